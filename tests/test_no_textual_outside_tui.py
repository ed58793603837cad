"""Textual stays in the dashboard: nothing below `order_export_tui.tui` imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "order_export_tui"
TUI = PACKAGE / "tui"


def textual_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{path}:{node.lineno}: {name}" for name in names if name.split(".")[0] == "textual"
        ]
    return found


def test_no_module_outside_tui_imports_textual() -> None:
    modules = [path for path in PACKAGE.rglob("*.py") if TUI not in path.parents]
    assert len(modules) > 10  # the walk found the package
    assert [hit for path in modules for hit in textual_imports(path)] == []


def test_the_check_would_see_a_textual_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom textual.app import App\nimport textual\n")
    assert len(textual_imports(module)) == 2


def test_importing_the_engine_service_daemon_and_cli_loads_no_textual() -> None:
    code = (
        "import sys\n"
        "import order_export_tui.engine.runner, order_export_tui.service.export_service\n"
        "import order_export_tui.daemon, order_export_tui.cli\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] == 'textual')\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""
