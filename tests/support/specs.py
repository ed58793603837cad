"""Validate request bodies against the platforms' official OpenAPI files.

The files are read from ../shared/specs (never copied into the project). Two OpenAPI habits
are translated for JSON Schema: `nullable: true`, and `allOf` branches that each say
`additionalProperties: false` while meaning the merged object (a literal reading would reject
every Dotdigital import record, whose `key` and `json` sit in the other branch). The merged
reading keeps the strictness: only the union of the branches' properties is allowed.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SPECS_DIR = Path(__file__).resolve().parents[3] / "shared" / "specs"


@cache
def load_spec(name: str) -> dict[str, Any]:
    path = SPECS_DIR / name
    if not path.exists():
        pytest.skip(f"the official spec {path} is not here: body validation skipped")
    return json.loads(path.read_text())


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    target: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def _translate(spec: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    if depth > 60:  # recursive schemas: stop expanding, accept anything deeper
        return {}
    if isinstance(schema, list):
        return [_translate(spec, item, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _translate(spec, _resolve(spec, schema["$ref"]), depth + 1)
    schema = {key: _translate(spec, value, depth + 1) for key, value in schema.items()}
    if "allOf" in schema:
        schema = _merge_all_of(schema)
    if schema.pop("nullable", False) and "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"]
    schema.pop("format", None)  # OpenAPI formats such as "json" are annotations here
    return schema


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    branches = schema.pop("allOf")
    merged = copy.deepcopy(schema)
    properties: dict[str, Any] = dict(merged.get("properties", {}))
    required: list[str] = list(merged.get("required", []))
    closed = merged.get("additionalProperties") is False
    for branch in branches:
        if "allOf" in branch:
            branch = _merge_all_of(dict(branch))
        for key, value in branch.items():
            if key == "properties":
                properties.update(value)
            elif key == "required":
                required.extend(value)
            elif key == "additionalProperties":
                closed = closed or value is False
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = sorted(set(required))
    if closed:
        merged["additionalProperties"] = False
    else:
        merged.pop("additionalProperties", None)
    return merged


def schema_for(spec_name: str, pointer: str) -> dict[str, Any]:
    spec = load_spec(spec_name)
    return _translate(spec, {"$ref": pointer})


def assert_valid(body: Any, spec_name: str, pointer: str) -> None:
    """Raise with the validator's message when `body` breaks the schema at `pointer`."""
    jsonschema.validate(body, schema_for(spec_name, pointer))


DOTDIGITAL_INSIGHT = "dotdigital-insight-data-v3.openapi.json"
