"""The README is a front door and docs/ holds the rest: every relative link leads to a file (and
heading) that exists, nothing links outside the repository, every page is reachable from both the
README and docs/index.md, and the pages keep up with the commands and the settings."""

from __future__ import annotations

import argparse
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest

from order_export_tui.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
DOCUMENTS = [README, *PAGES]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# What GitHub would turn into a link to somewhere else: a URL, a www. host, an e-mail address.
_OUTSIDE = re.compile(r"https?://\w|\bwww\.\w|[\w.+-]+@[\w-]+\.\w")


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def _without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def _prose(text: str) -> str:
    """The text a reader sees as prose: no fenced blocks, no inline code."""
    return _CODE_SPAN.sub("", _without_code_blocks(text))


def _links(path: Path) -> list[str]:
    return _LINK.findall(_prose(path.read_text(encoding="utf-8")))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, spaces as -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    anchors: set[str] = set()
    for heading in _HEADING.findall(_without_code_blocks(path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        candidate, n = slug, 0
        while candidate in anchors:  # GitHub numbers repeated headings: name, name-1, ...
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return frozenset(anchors)


def _is_relative(target: str) -> bool:
    return not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target)


def test_the_pages_exist() -> None:
    assert README.exists()
    assert DOCS / "index.md" in PAGES


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document: Path) -> None:
    broken: list[str] = []
    for target in _links(document):
        if not _is_relative(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (document.parent / path_part).resolve() if path_part else document
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif REPO not in destination.parents and destination != REPO:
            broken.append(f"{target}: outside the repository")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {_name(destination)}")
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_nothing_links_outside_the_repository(document: Path) -> None:
    # Example URLs an operator types belong in code (`...` or a fenced block), never in prose.
    outside = [t for t in _links(document) if not _is_relative(t)]
    prose = _prose(document.read_text(encoding="utf-8"))
    assert outside == []
    assert [m.group(0) for m in _OUTSIDE.finditer(prose)] == []


def test_the_readme_is_a_front_door() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) < 200


def test_every_page_is_linked_from_the_readme_and_from_the_index() -> None:
    def linked_from(document: Path) -> set[Path]:
        return {
            (document.parent / target.partition("#")[0]).resolve()
            for target in _links(document)
            if _is_relative(target) and target.partition("#")[0]
        }

    from_readme, from_index = linked_from(README), linked_from(DOCS / "index.md")
    pages = {page.resolve() for page in PAGES if page.name != "index.md"}
    assert sorted(_name(p) for p in pages - from_readme) == []
    assert sorted(_name(p) for p in pages - from_index) == []
    assert (DOCS / "index.md").resolve() in from_readme


def test_the_readme_shows_every_command() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    readme = README.read_text(encoding="utf-8")
    missing = [name for name in subcommands.choices if f"order-export {name}" not in readme]
    assert len(subcommands.choices) >= 9
    assert missing == []


def test_the_settings_reference_names_every_key_of_the_shipped_settings() -> None:
    shipped = tomllib.loads((REPO / "settings.toml").read_text(encoding="utf-8"))
    reference = (DOCS / "settings.md").read_text(encoding="utf-8")
    # Each table is a heading "`[name]`" followed by its keys' rows, up to the next heading.
    sections = dict(re.findall(r"^#+ `\[([\w.]+)\]`\n(.*?)(?=^#|\Z)", reference, re.M | re.S))
    missing: list[str] = []

    def walk(table: dict[str, object], name: str) -> None:
        if name not in sections:
            missing.append(f"[{name}]")
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{name}.{key}")
            elif f"| `{key}` |" not in sections.get(name, ""):
                missing.append(f"{name}.{key}")

    for name, table in shipped.items():
        walk(table, name)
    assert missing == []


def test_ci_runs_the_readmes_test_command() -> None:
    readme = README.read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"
        " && .venv/bin/python -m pytest -q"
    )
    assert test_command in readme
    assert "pip install --quiet -e '.[test]'" in ci
    assert re.search(r"^python -m pytest -q$", ci, re.MULTILINE)
