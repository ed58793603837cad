"""Saving some keys changes only their lines: an operator's comments, inline comments and the
keys nobody touched survive (issue 25, item 1)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.settings import SettingsError
from order_export_tui.settings.patch import PatchError, patch_settings_text, revision_of
from order_export_tui.settings.store import SettingsChangedError, read_revision, save_changes

SHIPPED = (Path(__file__).resolve().parents[1] / "settings.toml").read_text()


def flat(text: str) -> dict[str, Any]:
    def walk(table: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in table.items():
            if isinstance(value, dict):
                out.update(walk(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    return walk(tomllib.loads(text), "")


def test_a_hand_edit_and_its_comments_survive_a_save_of_another_key() -> None:
    edited = SHIPPED.replace(
        "max_items_to_skip = 10",
        "# raised for Black Friday, ask Piet\nmax_items_to_skip = 11  # was 10",
    )

    saved = patch_settings_text(edited, {"task.request_timeout_seconds": 45})

    assert "max_items_to_skip = 11  # was 10\n" in saved
    assert "# raised for Black Friday, ask Piet\n" in saved
    assert flat(saved)["task.request_timeout_seconds"] == 45
    assert [line for line in saved.splitlines() if "request_timeout" not in line] == [
        line for line in edited.splitlines() if "request_timeout" not in line
    ]


def test_an_inline_comment_on_the_changed_key_stays() -> None:
    text = '[task]\nbatch_size = 100   # tuned for the ERP\n[file]\npath = "a#b.jsonl" # hash\n'

    saved = patch_settings_text(text, {"task.batch_size": 7, "file.path": "c.jsonl"})

    assert (
        saved == '[task]\nbatch_size = 7   # tuned for the ERP\n[file]\npath = "c.jsonl" # hash\n'
    )


def test_a_missing_key_and_a_missing_table_are_added() -> None:
    text = '[task]\nbatch_size = 100\n\n# the store\n[webstore]\nname = "Shop"\n'

    saved = patch_settings_text(text, {"task.max_retries": 5, "monitoring.listen": ""})

    assert saved.startswith("[task]\nbatch_size = 100\nmax_retries = 5\n\n# the store\n")
    assert flat(saved) == {
        "task.batch_size": 100,
        "task.max_retries": 5,
        "webstore.name": "Shop",
        "monitoring.listen": "",
    }


def test_a_multi_line_array_is_replaced_whole() -> None:
    text = (
        '[email]\nto = [\n    "a@example.com", # first\n    "b@example.com",\n]  # admins\nx = 1\n'
    )

    saved = patch_settings_text(text, {"email.to": ["c@example.com"]})

    assert saved == '[email]\nto = [\n    "c@example.com",\n]  # admins\nx = 1\n'


def test_a_key_written_as_a_dotted_key_in_its_parent_is_refused_not_doubled() -> None:
    text = '[erp]\nsource = "demo"\nbusiness_central.base_url = ""\n'

    with pytest.raises(PatchError):
        patch_settings_text(text, {"erp.business_central.base_url": "https://erp.example"})


def test_the_revision_names_the_exact_text() -> None:
    assert revision_of(SHIPPED) == revision_of(str(SHIPPED))
    assert revision_of(SHIPPED) != revision_of(SHIPPED + "\n")


SHIPPED_KEYS = flat(SHIPPED)
# Where an operator can put a comment line: before any line that starts a statement (inside a
# multi-line value being replaced, a comment goes with the value).
STATEMENT_STARTS = [
    number
    for number, line in enumerate([*SHIPPED.splitlines(), ""])
    if line == "" or line.startswith(("#", "[")) or "=" in line
]
_SAME_TYPE = {
    bool: st.booleans(),
    int: st.integers(min_value=-(2**40), max_value=2**40),
    str: st.text(max_size=30),
    list: st.lists(st.text(max_size=12), max_size=4),
}


@st.composite
def changes_and_comments(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    keys = draw(st.lists(st.sampled_from(sorted(SHIPPED_KEYS)), unique=True, max_size=8))
    changes = {key: draw(_SAME_TYPE[type(SHIPPED_KEYS[key])]) for key in keys}
    comment_text = st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30
    )
    comments = draw(
        st.lists(
            st.tuples(st.sampled_from(STATEMENT_STARTS), comment_text.map(lambda t: f"# {t}")),
            max_size=5,
        )
    )
    return changes, comments


@settings(max_examples=150, deadline=None)
@given(changes_and_comments())
def test_any_change_lands_and_every_other_line_stays(
    drawn: tuple[dict[str, Any], list[tuple[int, str]]],
) -> None:
    changes, comments = drawn
    lines = SHIPPED.splitlines()
    for at, comment in sorted(comments, reverse=True):
        lines.insert(at, comment)
    text = "\n".join(lines) + "\n"

    saved = patch_settings_text(text, changes)

    assert flat(saved) == {**SHIPPED_KEYS, **changes}
    kept = [line for line in saved.splitlines() if line.lstrip().startswith("#")]
    assert [c for _, c in comments if c not in kept] == []


def shop_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(SHIPPED.replace("max_items_to_skip = 10", "max_items_to_skip = 11  # Piet"))
    path.chmod(0o640)
    return path


def test_save_changes_writes_only_the_change_and_keeps_the_mode(tmp_path: Path) -> None:
    path = shop_file(tmp_path)
    before = path.read_text()

    settings = save_changes(path, {"task.batch_size": 7}, revision=read_revision(path))

    assert settings.task.batch_size == 7 and settings.task.max_items_to_skip == 11
    assert path.read_text() == before.replace("batch_size = 100", "batch_size = 7")
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_save_over_a_file_changed_since_it_was_read_writes_nothing(tmp_path: Path) -> None:
    path = shop_file(tmp_path)
    revision = read_revision(path)
    path.write_text(path.read_text().replace("max_retries = 3", "max_retries = 4"))
    edited = path.read_text()

    with pytest.raises(SettingsChangedError, match="changed since it was read"):
        save_changes(path, {"task.batch_size": 7}, revision=revision)

    assert path.read_text() == edited


def test_an_invalid_change_names_its_key_and_leaves_the_file(tmp_path: Path) -> None:
    path = shop_file(tmp_path)
    before = path.read_text()

    with pytest.raises(SettingsError) as raised:
        save_changes(path, {"task.batch_size": 0})

    assert raised.value.problems == ["task.batch_size: must be an integer from 1 to 10000 (got 0)"]
    assert path.read_text() == before
