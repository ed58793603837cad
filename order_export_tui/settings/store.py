"""Loading (tomllib) and atomic saving (the text of `document`, values by tomli-w) of the
settings file."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from order_export_tui.settings.document import DEFAULT_HEADER, header_of, render_settings
from order_export_tui.settings.model import Settings, SettingsError
from order_export_tui.settings.patch import PatchError, patch_settings_text, revision_of
from order_export_tui.settings.rules import settings_from_dict, validate_settings

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


def _syntax_problem(path: Path, text: str, error: tomllib.TOMLDecodeError) -> str:
    message = str(error)
    position = _TOML_POSITION.search(message)
    if position:
        line, column = int(position.group(1)), int(position.group(2))
    else:
        # tomllib reports errors on the last statement "at end of document"; name that spot.
        line = text.count("\n") + 1
        column = len(text.rsplit("\n", 1)[-1]) + 1
    reason = _TOML_AT_END.sub("", _TOML_POSITION.sub("", message))
    return f"{path}: TOML syntax error at line {line}, column {column}: {reason}"


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            [
                f"{path.absolute()}: settings file not found"
                " (name another with --settings PATH or $ORDER_EXPORT_SETTINGS)"
            ]
        ) from None
    except IsADirectoryError:
        raise SettingsError([f"{path}: is a folder, not a settings file"]) from None
    except OSError as error:
        raise SettingsError([f"{path}: cannot read settings file ({error.strerror})"]) from None
    try:
        return raw.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SettingsError([f"{path}: not UTF-8 text (bad byte at line {line})"]) from None


def load_settings(path: Path | str) -> Settings:
    """Read and validate a settings file; SettingsError lists every problem. Never writes."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError([_syntax_problem(path, text, error)]) from None
    except RecursionError:
        raise SettingsError([f"{path}: TOML syntax error: values nested too deeply"]) from None
    return settings_from_dict(data, path)


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Validate, then atomically rewrite the settings file keeping its permission bits and
    its header (the first block of comments; a new file gets the standard one). Every key is
    written with its description as its comment.

    Raises SettingsError (the file untouched) for invalid settings or when writing fails.
    """
    problems = validate_settings(settings)
    if problems:
        raise SettingsError(problems)
    target = Path(path) if path is not None else settings.path
    content = render_settings(settings, _header_to_keep(target)).encode("utf-8")
    try:
        _atomic_write(target, content)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SettingsError([f"{target}: cannot write settings file ({reason})"]) from None


class SettingsChangedError(Exception):
    """The settings file changed since the form (or client) read it: nothing was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} changed since it was read (edited by hand or saved from another"
            " dashboard): nothing was saved; reload it and make the change again"
        )


def read_revision(path: Path) -> str:
    """The revision of the file's text now; `save_changes` compares it."""
    return revision_of(_read_text(path))


def save_changes(
    path: Path, changes: Mapping[str, Any], *, revision: str | None = None
) -> Settings:
    """Set these dotted keys in the file as it is now, leaving every other line (comments,
    hand edits, untouched keys) as it is, and save it atomically; the new settings.

    SettingsChangedError when `revision` is given and the file's text is no longer that one;
    SettingsError (the file untouched) when the result does not validate or cannot be written.
    """
    text = _read_text(path)
    if revision is not None and revision_of(text) != revision:
        raise SettingsChangedError(path)
    try:
        changed = patch_settings_text(text, changes)
    except PatchError as error:
        raise SettingsError([f"{path}: cannot change the file in place ({error})"]) from None
    settings = settings_from_dict(tomllib.loads(changed), path)
    try:
        _atomic_write(path, changed.encode("utf-8"))
    except OSError as error:
        reason = error.strerror or str(error)
        raise SettingsError([f"{path}: cannot write settings file ({reason})"]) from None
    return settings


def _header_to_keep(target: Path) -> tuple[str, ...]:
    try:
        text = target.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return DEFAULT_HEADER  # a new file, or one we cannot read: it gets the standard one
    return header_of(text) or DEFAULT_HEADER


def _atomic_write(target: Path, content: bytes) -> None:
    # Write through a symlink to its target, so the link itself survives the rename.
    target = Path(os.path.realpath(target))
    folder = target.parent
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    temp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # A new file gets 0o644 less the umask, as any freshly created file would.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
            if old is not None:
                with contextlib.suppress(PermissionError):  # only root may give files away
                    os.fchown(handle.fileno(), old.st_uid, old.st_gid)
                os.fchmod(handle.fileno(), old.st_mode & 0o7777)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable. Some platforms and file systems cannot fsync a folder;
    # the new file is already in place then, so that is not a failure of the save.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
