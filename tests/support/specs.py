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
import os
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

# Beside the checkout (../shared/specs); ORDER_EXPORT_SPECS_DIR names them elsewhere (a git
# worktree one folder deeper).
SPECS_DIR = Path(
    os.environ.get("ORDER_EXPORT_SPECS_DIR")
    or Path(__file__).resolve().parents[3] / "shared" / "specs"
)


def require_specs(*names: str) -> None:
    """Skip the test (in its own thread, at set-up) when an official spec is absent: a fake
    server that found out only while answering would answer 500 instead."""
    missing = [name for name in names if not (SPECS_DIR / name).exists()]
    if missing:
        pytest.skip(f"the official specs {missing} are not in {SPECS_DIR}: the fakes need them")


@cache
def load_spec(name: str) -> dict[str, Any]:
    path = SPECS_DIR / name
    if not path.exists():
        pytest.skip(f"the official spec {path} is not here: body validation skipped")
    return json.loads(path.read_text())


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    target: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        target = target[int(key)] if isinstance(target, list) else target[key]
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


# --- Swagger 2.0 (Mailchimp) ------------------------------------------------------------------
#
# Mailchimp's file is Swagger 2.0: no `components`, each operation's body schema sits inline in
# its `in: body` parameter under `paths`. Swagger's own habits are translated for JSON Schema
# (draft 4, which Swagger 2 builds on): `x-nullable: true` also allows null, and `date-time`
# is the one format checked (an ISO 8601 time with an offset). With `closed=True` every object
# that lists its properties allows no others: Mailchimp silently ignores an unknown field, so a
# misspelt one would otherwise go unnoticed.

MAILCHIMP = "mailchimp-marketing-ecommerce.openapi.json"

_SWAGGER_FORMATS = jsonschema.FormatChecker(formats=())


@_SWAGGER_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports it
    moment = datetime.fromisoformat(value)
    return "T" in value and moment.tzinfo is not None


def _translate_swagger(spec: dict[str, Any], schema: Any, closed: bool, depth: int = 0) -> Any:
    if depth > 60:
        return {}
    if isinstance(schema, list):
        return [_translate_swagger(spec, item, closed, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _translate_swagger(spec, _resolve(spec, schema["$ref"]), closed, depth + 1)
    translated = {
        key: value if key == "properties" else _translate_swagger(spec, value, closed, depth + 1)
        for key, value in schema.items()
    }
    if "properties" in schema:
        translated["properties"] = {
            name: _translate_swagger(spec, value, closed, depth + 1)
            for name, value in schema["properties"].items()
        }
        if closed:
            translated.setdefault("additionalProperties", False)
    if translated.pop("x-nullable", False) and "type" in translated:
        kinds = translated["type"] if isinstance(translated["type"], list) else [translated["type"]]
        translated["type"] = [*kinds, "null"]
    if translated.get("format") != "date-time":
        translated.pop("format", None)
    return translated


def swagger_operation(spec_name: str, path: str, method: str) -> dict[str, Any]:
    """The operation object at `paths[path][method]` (path as the spec writes it)."""
    return load_spec(spec_name)["paths"][path][method.lower()]


def swagger_body_schema(
    spec_name: str, path: str, method: str, *, closed: bool = False
) -> dict[str, Any] | None:
    """The JSON Schema of the operation's request body; None when it takes no body."""
    spec = load_spec(spec_name)
    for parameter in swagger_operation(spec_name, path, method).get("parameters", []):
        if parameter.get("in") == "body":
            return _translate_swagger(spec, parameter.get("schema", {}), closed)
    return None


@cache
def _swagger_validator(
    spec_name: str, path: str, method: str, closed: bool
) -> jsonschema.protocols.Validator | None:
    schema = swagger_body_schema(spec_name, path, method, closed=closed)
    if schema is None:
        return None
    return jsonschema.Draft4Validator(schema, format_checker=_SWAGGER_FORMATS)


def swagger_body_errors(
    body: Any, spec_name: str, path: str, method: str, *, closed: bool = False
) -> list[tuple[str, str]]:
    """One `(field, message)` per violation, the field dotted as Mailchimp writes it
    (`lines.0.price`, "" for the body itself); [] when the body is valid."""
    validator = _swagger_validator(spec_name, path, method.lower(), closed)
    if validator is None:
        return [] if body is None else [("", "this operation takes no request body")]
    found = [
        (".".join(str(part) for part in error.absolute_path), error.message)
        for error in validator.iter_errors(body)
    ]
    return sorted(found)


def assert_valid_body(
    body: Any, spec_name: str, path: str, method: str, *, closed: bool = False
) -> None:
    """Raise AssertionError listing every violation of the operation's body schema."""
    errors = swagger_body_errors(body, spec_name, path, method, closed=closed)
    assert not errors, f"{method.upper()} {path}: " + "; ".join(f"{f}: {m}" for f, m in errors)


@cache
def _swagger_routes(spec_name: str) -> list[tuple[re.Pattern[str], str]]:
    """Each spec path as a pattern; literal segments win over parameters when both match."""
    routes = []
    for template in load_spec(spec_name)["paths"]:
        pattern = "".join(
            f"/(?P<{segment[1:-1]}>[^/]+)" if segment.startswith("{") else "/" + re.escape(segment)
            for segment in template.strip("/").split("/")
        )
        literal_segments = sum(1 for s in template.split("/") if s and not s.startswith("{"))
        routes.append((literal_segments, re.compile(f"^{pattern}/?$"), template))
    routes.sort(key=lambda route: -route[0])
    return [(pattern, template) for _, pattern, template in routes]


def swagger_route(spec_name: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The spec path template that `path` (below the spec's basePath, percent-decoded per
    segment by the caller) matches, with its path parameters; None when none does."""
    for pattern, template in _swagger_routes(spec_name):
        match = pattern.match(path)
        if match is not None:
            return template, match.groupdict()
    return None


def swagger_query_errors(
    query: dict[str, str], spec_name: str, path: str, method: str
) -> list[tuple[str, str]]:
    """One `(parameter, message)` for each query parameter the operation does not declare, or
    whose value is not of its type or breaks its bounds; [] when the query is valid."""
    declared = {
        parameter["name"]: parameter
        for parameter in swagger_operation(spec_name, path, method).get("parameters", [])
        if parameter.get("in") == "query"
    }
    errors = []
    for name, value in sorted(query.items()):
        parameter = declared.get(name)
        if parameter is None:
            errors.append((name, "is not a query parameter of this operation"))
            continue
        problem = _query_value_problem(parameter, value)
        if problem:
            errors.append((name, problem))
    return errors


def _query_value_problem(parameter: dict[str, Any], value: str) -> str | None:
    kind = parameter.get("type")
    if kind == "integer":
        try:
            number = int(value)
        except ValueError:
            return f"{value!r} is not an integer"
        if "maximum" in parameter and number > parameter["maximum"]:
            return f"{number} is above the maximum {parameter['maximum']}"
        if "minimum" in parameter and number < parameter["minimum"]:
            return f"{number} is below the minimum {parameter['minimum']}"
    elif kind == "boolean" and value not in ("true", "false"):
        return f"{value!r} is not true or false"
    elif kind == "array" and not value:
        return "is empty"
    return None


def swagger_response_schema(
    spec_name: str, path: str, method: str, status: str = "200", *, closed: bool = False
) -> dict[str, Any]:
    """The JSON Schema of the operation's answer with this status."""
    spec = load_spec(spec_name)
    response = swagger_operation(spec_name, path, method)["responses"][status]
    return _translate_swagger(spec, response.get("schema", {}), closed)  # type: ignore[no-any-return]


def assert_valid_answer(
    body: Any, spec_name: str, path: str, method: str, *, closed: bool = False
) -> None:
    """Raise AssertionError listing every way `body` breaks the operation's 200 answer."""
    schema = swagger_response_schema(spec_name, path, method, closed=closed)
    validator = jsonschema.Draft4Validator(schema, format_checker=_SWAGGER_FORMATS)
    errors = sorted(
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(body)
    )
    assert not errors, f"{method.upper()} {path} answer: " + "; ".join(errors[:10])
