"""A storage folder that cannot be written is named by its key at `check` and at the start,
instead of passing `check` and failing every run later (issue 25, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_settings
from tests.support.cli import order_export


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("storage", "logs_dir", "afile/logs"),
        ("storage", "state_database", "afile/data/state.sqlite"),
        ("file", "path", "afile/exports/orders.jsonl"),
    ],
)
def test_check_and_the_start_name_a_folder_that_cannot_be_written(
    tmp_path: Path, table: str, key: str, value: str
) -> None:
    (tmp_path / "afile").write_text("a file where a folder would have to be\n")
    write_settings(tmp_path, {table: {key: value}})

    checked = order_export("check", cwd=tmp_path)
    ran = order_export("run", cwd=tmp_path)
    daemon = order_export("daemon", cwd=tmp_path, timeout=60)

    for result in (checked, ran, daemon):
        assert result.returncode == 2, result.stderr
        assert f"{table}.{key}: cannot write to " in result.stderr
        assert f"{tmp_path / 'afile'}: is a file where a folder is needed" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists() or key != "logs_dir"


def test_writable_folders_pass_and_nothing_is_left_behind(tmp_path: Path) -> None:
    write_settings(tmp_path)
    (tmp_path / "logs").mkdir()

    checked = order_export("check", cwd=tmp_path)

    assert checked.returncode == 0, checked.stderr
    assert list((tmp_path / "logs").iterdir()) == []  # the probe file is gone
