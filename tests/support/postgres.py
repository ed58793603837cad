"""A real PostgreSQL server for the tests: initdb into a temporary folder, `postgres` on a free
loopback port, stopped at the end of the session.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user (its
folder handed to that user); as anyone else it runs as that user. Without PostgreSQL's programs
(PATH, or Debian's /usr/lib/postgresql/<version>/bin) every test that asks for it skips, saying
why. `.ci/run` installs Debian's `postgresql` package when `initdb` is missing.

Local connections and TCP from 127.0.0.1 are trusted, except for one role that must give a
password (scram-sha-256), for the tests of password handling. `postgres_database` gives each
test a fresh database of its own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.ports import free_port

SUPERUSER = "postgres"
PASSWORD_ROLE = "order_export_pw"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


def postgres_programs() -> tuple[Path, Path] | None:
    """`initdb` and `postgres`: on PATH, else the newest Debian install; None when absent."""
    initdb, server = shutil.which("initdb"), shutil.which("postgres")
    if initdb and server:
        return Path(initdb), Path(server)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        initdb_path, server_path = Path(folder, "initdb"), Path(folder, "postgres")
        if initdb_path.is_file() and server_path.is_file():
            return initdb_path, server_path
    return None


def _version(folder: str) -> float:
    try:
        return float(Path(folder).parent.name)
    except ValueError:
        return 0.0


@dataclass
class PostgresServer:
    """A running server; URLs are SQLAlchemy URLs for psycopg 3."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    user: pwd.struct_passwd | None  # the system user it runs as, when not this process's own
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    host: str = "127.0.0.1"
    _databases: int = 0

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql+psycopg://{user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **options: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            **{"connect_timeout": 5, "autocommit": True, **options},
        )

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; its name."""
        self._databases += 1
        name = f"{prefix}_{self._databases}_{secrets.token_hex(3)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            conn.execute(f'GRANT ALL ON DATABASE "{name}" TO {PASSWORD_ROLE}')
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 20) -> str:
        log = self.folder / "server.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def halt(self) -> None:
        """Stop the server (fast shutdown: every session ends), keeping its data and port."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(STOP_TIMEOUT_SECONDS)

    def resume(self) -> None:
        """Start the halted server again, on the same data and port."""
        programs = postgres_programs()
        assert programs is not None
        with open(self.folder / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                _server_command(programs[1], self.folder / "data", self.folder, self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **_user_options(self.user),  # type: ignore[arg-type]
            )
        _wait_until_ready(self)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: sessions ended, clean
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start a server (raises `RuntimeError` saying why it could not; skip-worthy reasons
    raise `PostgresUnavailableError`)."""
    programs = postgres_programs()
    if programs is None:
        raise PostgresUnavailableError(
            "PostgreSQL is not installed (no initdb and postgres on PATH or in"
            " /usr/lib/postgresql/*/bin; Debian: apt-get install postgresql)"
        )
    initdb, server = programs
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="order-export-pg-"))
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        data = folder / "data"
        _as_server_user(
            user,
            [str(initdb), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"],
            "--no-locale",
        )
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        port = free_port()
        log = open(folder / "server.log", "wb")  # noqa: SIM115 - the server writes it until it stops
        with log:
            process = subprocess.Popen(
                _server_command(server, data, folder, port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **_user_options(user),
            )
        running = PostgresServer(folder=folder, port=port, process=process, user=user)
        try:
            _wait_until_ready(running)
            with running.connect() as conn:
                conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{running.password}'")
        except BaseException:
            running.stop()
            raise
        return running
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


class PostgresUnavailableError(RuntimeError):
    """This machine cannot run a PostgreSQL server for the tests."""


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailableError(
            "running as root and there is no 'postgres' system user to run PostgreSQL as"
        ) from None


def _user_options(user: pwd.struct_passwd | None) -> dict[str, object]:
    if user is None:
        return {}
    return {
        "user": user.pw_uid,
        "group": user.pw_gid,
        "extra_groups": [],
        "env": {**os.environ, "HOME": user.pw_dir, "USER": user.pw_name},
        "cwd": "/",
    }


def _as_server_user(user: pwd.struct_passwd | None, command: list[str], *more: str) -> None:
    done = subprocess.run(
        [*command, *more],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **_user_options(user),  # type: ignore[arg-type]
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def _server_command(server: Path, data: Path, folder: Path, port: int) -> list[str]:
    settings = {
        "listen_addresses": "127.0.0.1",
        # A test server: durability traded for speed.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    command = [str(server), "-D", str(data), "-k", str(folder), "-p", str(port)]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    return command


def _wait_until_ready(server: PostgresServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited at start:\n{server.log_tail()}")
        try:
            with server.connect(connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres did not accept connections within {START_TIMEOUT_SECONDS:.0f}"
                    f" seconds:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)  # polling a server that is starting, not waiting a fixed time


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (skips when the machine has none)."""
    try:
        server = start_postgres()
    except PostgresUnavailableError as reason:
        pytest.skip(str(reason))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database for one test (dropped after it): its name."""
    name = postgres_server.create_database()
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            postgres_server.drop_database(name)
