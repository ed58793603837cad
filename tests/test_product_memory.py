"""What Mailchimp was sent of each product is kept in the state database like everything else
there: its folders are created 0700, a file that is not a database is refused untouched, and a
save that cannot be written is a `StateWriteError` that saves none of it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from order_export_tui.state import ProductMemory, StateDatabaseCorruptError, StateWriteError
from tests.support.small_disk import can_mount_tmpfs

REPO = Path(__file__).resolve().parents[1]
SCOPE = "mailchimp:us1:store-1"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_folders_it_creates_are_0700_and_its_file_0600(tmp_path: Path) -> None:
    database = tmp_path / "state" / "deeper" / "state.sqlite"
    umask = os.umask(0o022)  # what a service usually runs with: a plain mkdir makes 0755
    try:
        memory = ProductMemory(database, SCOPE)
    finally:
        os.umask(umask)
    try:
        memory.save({"SKU-1": "hash-1"})
        assert memory.load() == {"SKU-1": "hash-1"}
    finally:
        memory.close()
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "deeper") == 0o700
    assert mode(database) == 0o600


def test_a_save_the_database_refuses_is_a_state_write_error_and_saves_none_of_it(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.sqlite"
    memory = ProductMemory(database, SCOPE)
    try:
        memory.save({"SKU-1": "hash-1"})
        # Another connection makes the real file refuse every new product.
        other = sqlite3.connect(database)
        other.execute(
            "CREATE TRIGGER refuse_products BEFORE INSERT ON sent_product"
            " BEGIN SELECT RAISE(ABORT, 'no more products'); END"
        )
        other.close()
        with pytest.raises(StateWriteError, match="no more products") as raised:
            memory.save({"SKU-2": "hash-2"}, forgotten=["SKU-1"])
        assert raised.value.path == database
        assert memory.load() == {"SKU-1": "hash-1"}  # the forgetting was rolled back too
    finally:
        memory.close()


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    database = tmp_path / "state.sqlite"
    database.write_bytes(b"not a database, but someone's notes" * 10)
    before = database.read_bytes()
    with pytest.raises(StateDatabaseCorruptError, match="not an SQLite database"):
        ProductMemory(database, SCOPE)
    assert database.read_bytes() == before


# Runs inside its own mount namespace with the state database on a small tmpfs, which it fills
# to the last byte before the second save.
_FULL_DISK_SAVE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from order_export_tui.state import ProductMemory, StateWriteError
    from tests.support.small_disk import fill

    mount = Path(sys.argv[1])
    memory = ProductMemory(mount / "state" / "state.sqlite", "mailchimp:us1:store-1")
    memory.save({"SKU-1": "hash-1"})
    filler = fill(mount)
    try:
        memory.save({f"SKU-{n}": "h" * 64 for n in range(2, 20000)})
        outcome = "saved"
    except StateWriteError as error:
        outcome = str(error)
    filler.unlink()
    print(json.dumps({"outcome": outcome, "kept": memory.load()}))
    memory.close()
    """
)


@pytest.mark.skipif(not can_mount_tmpfs(), reason="no user namespace to mount a small tmpfs")
def test_a_save_on_a_full_disk_is_a_state_write_error_and_keeps_what_was_saved(
    tmp_path: Path,
) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    script = tmp_path / "full_disk_save.py"
    script.write_text(_FULL_DISK_SAVE)
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=1m tmpfs "{mount}" && "{sys.executable}" "{script}" "{mount}"',
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"].startswith("cannot write the state database")
    assert "database or disk is full" in result["outcome"]
    assert "(free some disk space)" in result["outcome"]
    assert result["kept"] == {"SKU-1": "hash-1"}
