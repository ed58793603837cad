"""Settings files the tests read: the settings.toml shipped with the project."""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "settings.toml"
