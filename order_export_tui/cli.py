"""The `order-export` command line (interfaces.md §1): argument parsing and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from order_export_tui import __version__
from order_export_tui.collector import settle_collector
from order_export_tui.engine.backfill import backfill_day
from order_export_tui.engine.events import CANCELLED, SUCCEEDED, RunReport
from order_export_tui.run_display import (
    RunDisplay,
    message_console,
    output_console,
    print_status,
    print_summary,
)
from order_export_tui.settings import (
    Settings,
    SettingsError,
    default_settings_path,
    load_settings,
    missing_secrets,
    weak_secrets,
)
from order_export_tui.settings.connectors import registry
from order_export_tui.settings.salvage import storage_of_broken_file
from order_export_tui.settings.writable import unwritable_folders
from order_export_tui.sources.demo.connector import demo_database_path
from order_export_tui.state import (
    StateLockedError,
    StateUnusableError,
    StateWriteError,
    StoragePathError,
)
from order_export_tui.transport.redaction import redact

if TYPE_CHECKING:
    from order_export_tui.service.control_client import AttachedControl
    from order_export_tui.service.export_service import OrdersAnswer
    from order_export_tui.service.session import HostedSession
    from order_export_tui.service.verify_answer import VerifyAnswer

# Each command imports the service layer it needs inside its function: the daemon, the
# web servers and the destinations' clients are not loaded by `check`, `demo` or `--help`
# (the idle interpreter with this module imported went from 35 to 42 MB with them).

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


def build_parser() -> argparse.ArgumentParser:
    settings_option = argparse.ArgumentParser(add_help=False)
    settings_option.add_argument(
        "--settings",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="settings file (default: $ORDER_EXPORT_SETTINGS, else ./settings.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="order-export",
        description="Exports a webstore's ERP orders to Dotdigital or Mailchimp.",
        parents=[settings_option],
    )
    parser.add_argument("--version", action="version", version=f"order-export {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("tui", parents=[settings_option], help="the dashboard (default)")
    commands.add_parser("daemon", parents=[settings_option], help="the same work, no screen")
    run = commands.add_parser("run", parents=[settings_option], help="one export run now")
    run.add_argument("--json", action="store_true", help="print the run report as JSON")
    status = commands.add_parser(
        "status", parents=[settings_option], help="what the task is doing now"
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    commands.add_parser(
        "cancel", parents=[settings_option], help="cancel the run of the running daemon"
    )
    run.add_argument(
        "--since",
        type=_since_date,
        metavar="YYYY-MM-DD",
        help="this once, every order dated on or after this day, beyond max_days_to_export",
    )
    add_order_commands(commands, settings_option)
    add_verify_command(commands, settings_option)
    check = commands.add_parser("check", parents=[settings_option], help="validate the settings")
    check.add_argument(
        "--connect", action="store_true", help="also reach the ERP and the destination"
    )
    demo = commands.add_parser(
        "demo", parents=[settings_option], help="(re)create the embedded demo ERP"
    )
    demo.add_argument("--orders", type=_positive_int, default=500, metavar="N")
    demo.add_argument("--seed", type=int, default=1, metavar="S")
    demo.add_argument("--days", type=_positive_int, default=30, metavar="D")
    demo.add_argument("--malformed", type=_non_negative_int, default=3, metavar="K")
    demo.add_argument(
        "--activity",
        action="store_true",
        help="in the existing demo ERP, cancel 3 orders and refund 4 (2 in part), as an ERP"
        " does between runs; the next run sends them",
    )
    demo.add_argument(
        "--sql",
        metavar="URL",
        help='write the demo orders into tables and the two views of erp.source = "sql"'
        " at this database URL instead (e.g. sqlite:///data/erp-demo-sql.sqlite)",
    )
    return parser


def add_order_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_option: argparse.ArgumentParser,
) -> None:
    resend = commands.add_parser(
        "resend", parents=[settings_option], help="send these orders again now, changed or not"
    )
    resend.add_argument("order_ids", nargs="+", metavar="ORDER_ID")
    resend.add_argument("--json", action="store_true", help="print the outcome as JSON")
    retry = commands.add_parser(
        "retry", parents=[settings_option], help="re-try skipped orders now (all when none given)"
    )
    retry.add_argument("order_ids", nargs="*", metavar="ORDER_ID")
    retry.add_argument("--json", action="store_true", help="print the outcome as JSON")


def add_verify_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_option: argparse.ArgumentParser,
) -> None:
    verify = commands.add_parser(
        "verify",
        parents=[settings_option],
        help="compare the platform's copy of the window's orders with the ERP",
    )
    verify.add_argument(
        "--since",
        type=_since_date,
        metavar="YYYY-MM-DD",
        help="the orders dated on or after this day, beyond max_days_to_export",
    )
    verify.add_argument(
        "--repair", action="store_true", help="send what drifts, then verify again to confirm"
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")


def _since_date(text: str) -> date:
    try:
        return backfill_day(text, date.today())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative (got {value})")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = message_console()
    settings_path = default_settings_path(getattr(args, "settings", None))
    command = args.command or "tui"
    try:
        if command == "demo":
            return demo_command(args, settings_path, err)
        if command == "check":
            return check_command(args, settings_path, err)
        if command == "run":
            return run_command(args, settings_path, err)
        if command in ("resend", "retry"):
            return orders_command(command, args, settings_path, err)
        if command == "verify":
            return verify_command(args, settings_path, err)
        if command == "daemon":
            return daemon_command(settings_path, err)
        if command == "status":
            return status_command(args, settings_path, err)
        if command == "cancel":
            return cancel_command(settings_path, err)
        if command == "tui":
            return tui_command(settings_path)
    except SettingsError as error:
        err.print("[red]The settings are not valid:[/]", markup=True)
        for problem in error.problems:
            err.print(f"  {problem}", markup=False)
        return EXIT_BAD_INPUT
    except StoragePathError as error:  # a path of the state database is the wrong kind
        err.print(f"Not started: {error}", markup=False)
        return EXIT_BAD_INPUT
    except (StateUnusableError, StateWriteError) as error:  # a broken state database
        err.print(f"Not started: {error}", markup=False)
        return EXIT_TASK_FAILED
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    raise AssertionError(f"unhandled command {command!r}")  # argparse allows no other


def demo_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    if args.sql is not None:
        return demo_sql_command(args, settings_path, err)
    if args.activity:
        return demo_activity_command(args, settings_path, err)
    from order_export_tui.sources.demo import generate_demo_erp

    settings = load_settings(settings_path)
    path = demo_database_path(settings)
    try:
        generate_demo_erp(
            path, orders=args.orders, seed=args.seed, days=args.days, malformed=args.malformed
        )
    except OSError as error:  # a file where its folder should be, a full disk
        culprit = error.filename or path
        err.print(f"The demo ERP was not created: {culprit}: {error.strerror}", markup=False)
        return EXIT_BAD_INPUT
    err.print(
        f"demo ERP at {path}: {args.orders} orders over {args.days} days"
        f" (seed {args.seed}, {args.malformed} malformed)",
        markup=False,
    )
    return EXIT_OK


def demo_activity_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    from order_export_tui.engine.runner import window_start
    from order_export_tui.sources.demo import simulate_activity

    settings = load_settings(settings_path)
    path = demo_database_path(settings)
    if not path.exists():
        err.print(f"No demo ERP at {path}: create it with order-export demo", markup=False)
        return EXIT_BAD_INPUT
    first = window_start(datetime.now().astimezone(), settings.task.max_days_to_export)
    try:
        done = simulate_activity(path, seed=args.seed, since=first)
    except (OSError, sqlite3.Error) as error:
        err.print(f"The demo ERP could not be changed: {path}: {error}", markup=False)
        return EXIT_TASK_FAILED
    for what, numbers in (
        ("cancelled (deleted)", done.cancelled),
        ("refunded", done.refunded),
        ("partially refunded", done.partially_refunded),
    ):
        err.print(f"{what}: {', '.join(numbers) or 'none'}", markup=False)
    return EXIT_OK


def demo_sql_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    from order_export_tui.sources.sql.demo import DemoSqlError, demo_into

    generator = {"orders": args.orders, "seed": args.seed, "days": args.days}
    try:
        where, written = demo_into(
            args.sql, settings_path.resolve().parent, malformed=args.malformed, **generator
        )
    except DemoSqlError as error:
        err.print(f"The demo was not written: {error}", markup=False)
        return EXIT_BAD_INPUT if str(error).startswith("--sql:") else EXIT_TASK_FAILED
    err.print(
        f"demo ERP behind SQL at {where}: {written} orders over {args.days} days"
        f" (seed {args.seed}, {args.malformed} malformed) in the views order_export_orders"
        " and order_export_order_lines",
        markup=False,
    )
    return EXIT_OK


def check_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    from order_export_tui.service.wiring import check_available

    settings = load_settings(settings_path)
    problems = check_available(settings) + weak_secrets(settings) + unwritable_folders(settings)
    secrets = missing_secrets(settings)
    for broken in registry().problems():  # an installed connector package that is broken
        err.print(f"warning: {broken}", markup=False)
    if args.connect:
        problems += secrets
    else:
        for warning in secrets:
            err.print(f"warning: {warning}", markup=False)
    if not problems and args.connect:
        reached, unreached = asyncio.run(_connect(settings))
        for line in reached:
            err.print(line, markup=False)
        problems += unreached
    if problems:
        err.print("[red]Problems:[/]", markup=True)
        for problem in problems:
            # A base URL may carry user:password@, a platform may echo the credentials.
            err.print(f"  {redact(problem)}", markup=False)
        return EXIT_BAD_INPUT
    err.print(f"{settings_path}: settings are valid", markup=False)
    return EXIT_OK


async def _connect(settings: Settings) -> tuple[list[str], list[str]]:
    """What was reached ("ERP: ...", "destination: ..."), and the problems of what was not."""
    from order_export_tui.service.leadership import describe_state
    from order_export_tui.service.wiring import build_destination, build_source
    from order_export_tui.transport.retry import Retrier, RetryPolicy

    reached: list[str] = []
    problems: list[str] = []
    try:  # a PostgreSQL state: reached, and who leads it
        if (state := describe_state(settings)) is not None:
            reached.append(state)
    except StateUnusableError as error:
        problems.append(f"storage.state_database: {error}")
    retrier = Retrier(RetryPolicy(0, 0))
    source = build_source(settings, retrier)
    try:
        reached.append(f"ERP: {_one_line(await source.check_connection())}")
    except Exception as error:
        problems.append(f"erp.source: cannot read the ERP: {error}")
    finally:
        await source.close()
    destination = build_destination(settings)
    try:
        reached.append(f"destination: {_one_line(await destination.check_connection())}")
    except Exception as error:
        problems.append(f"destination.app: cannot use {destination.name}: {error}")
    finally:
        await destination.close()
    return reached, problems


def _one_line(text: str) -> str:
    # Names come from the platforms: a line break in one must not start a line of its own.
    return " ".join(text.split())


def settings_for_the_daemon(settings_path: Path) -> tuple[Settings, SettingsError | None]:
    """The settings; for a file that does not validate, the paths of its `[storage]` table
    (enough to reach a daemon that keeps running on its last good settings) and the error."""
    try:
        return load_settings(settings_path), None
    except SettingsError as error:
        if not settings_path.is_file():
            raise
        return storage_of_broken_file(settings_path), error


@dataclass(frozen=True)
class DaemonOrHere:
    """Where a command that may delegate is carried out: `attached` is the running daemon's
    control (None: this process), `refused` when this process may not run it (the reason is
    printed already)."""

    settings: Settings
    attached: AttachedControl | None
    refused: bool = False


def daemon_or_here(settings_path: Path, err: Console) -> DaemonOrHere:
    """The running daemon when there is one (a broken settings file is then only a warning:
    the daemon keeps its last good settings), else this process if its settings may run."""
    from order_export_tui.service.control_client import attach

    settings, broken = settings_for_the_daemon(settings_path)
    attached = asyncio.run(attach(settings.control_socket_path))
    if attached is not None:
        if broken is not None:
            warn_broken(err, broken, daemon_runs=True)
        return DaemonOrHere(settings, attached)
    if broken is not None:
        raise broken
    return DaemonOrHere(settings, None, refused=refused_at_start(settings, err))


def warn_broken(err: Console, error: SettingsError, daemon_runs: bool) -> None:
    keeps = "; the running process keeps its last good settings" if daemon_runs else ""
    err.print(Text.assemble(("The settings file is not valid", "yellow"), f"{keeps}:"))
    for problem in error.problems:
        err.print(f"  {problem}", markup=False)


def run_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    from order_export_tui.service.remote import RemoteRunError, follow_remote_run
    from order_export_tui.service.session import hosted_session

    where = daemon_or_here(settings_path, err)
    if where.refused:
        return EXIT_BAD_INPUT
    settings, attached = where.settings, where.attached
    report: RunReport | None = None
    if attached is not None:
        try:
            report = asyncio.run(
                follow_remote_run(
                    attached,
                    RunDisplay(err).handle,
                    trigger="manual" if args.since is None else "backfill",
                    since=None if args.since is None else args.since.isoformat(),
                )
            )
        except RemoteRunError as error:
            err.print(Text.assemble(("Not started:", "red"), f" {error}"))
            return EXIT_TASK_FAILED
    else:
        from order_export_tui.service.forwarding import (
            ForwardingError,
            forward_run,
            leads_elsewhere,
        )

        try:
            if (cluster := leads_elsewhere(settings)) is not None:  # the leader carries it out
                report = forward_run(
                    cluster,
                    "manual" if args.since is None else "backfill",
                    since=None if args.since is None else args.since.isoformat(),
                    on_event=RunDisplay(err).handle,
                )
            else:
                settle_collector()
                with hosted_session(settings, role="run") as session:
                    report = asyncio.run(
                        _run_here(
                            session,
                            RunDisplay(err).handle,
                            "manual" if args.since is None else "backfill",
                            since=args.since,
                            on_abandon=lambda: err.print(
                                "stopping now; the batch in flight will be sent again next run"
                            ),
                        )
                    )
        except (StateLockedError, RemoteRunError, ForwardingError) as error:
            err.print(Text.assemble(("Not started:", "red"), f" {error}"))
            return EXIT_TASK_FAILED
    print_summary(err, report)
    if args.json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
    if report.outcome == SUCCEEDED:
        return EXIT_OK
    return EXIT_CANCELLED if report.outcome == CANCELLED else EXIT_TASK_FAILED


def refused_at_start(settings: Settings, err: Console) -> bool:
    """Print what keeps this configuration from running (each problem with its key)."""
    from order_export_tui.service.wiring import startup_problems

    problems = startup_problems(settings)
    for problem in problems:
        err.print(problem, markup=False)
    return bool(problems)


def daemon_command(settings_path: Path, err: Console) -> int:
    from order_export_tui.daemon import configure_logging
    from order_export_tui.daemon import serve as serve_daemon
    from order_export_tui.service.control_socket import ControlSocketError
    from order_export_tui.service.intake import IntakeError
    from order_export_tui.service.session import hosted_session

    settings = load_settings(settings_path)
    if refused_at_start(settings, err):
        return EXIT_BAD_INPUT
    configure_logging()
    settle_collector()
    try:
        with hosted_session(settings, role="daemon") as session:
            asyncio.run(serve_daemon(session))
    except (StateLockedError, IntakeError, ControlSocketError) as error:
        err.print(f"Not started: {error}", markup=False)
        return EXIT_TASK_FAILED
    return EXIT_OK


def status_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    from order_export_tui.service.remote import read_status

    settings, broken = settings_for_the_daemon(settings_path)
    snapshot = asyncio.run(read_status(settings))
    if broken is not None:
        warn_broken(err, broken, daemon_runs=snapshot.process is not None)
    if args.json:
        sys.stdout.write(json.dumps(snapshot.as_json()) + "\n")
    else:
        print_status(output_console(), snapshot)
    return EXIT_OK


def cancel_command(settings_path: Path, err: Console) -> int:
    from order_export_tui.service.control_client import attach
    from order_export_tui.service.remote import cancel_remote_run

    settings, broken = settings_for_the_daemon(settings_path)
    control = asyncio.run(attach(settings.control_socket_path))
    if broken is not None:
        warn_broken(err, broken, daemon_runs=control is not None)
    if control is None:
        from order_export_tui.service.forwarding import (
            ForwardingError,
            forward_cancel,
            leads_elsewhere,
        )

        if (cluster := leads_elsewhere(settings)) is None:
            err.print("No order-export daemon or dashboard runs exports here.", markup=False)
            return EXIT_TASK_FAILED
        try:
            message = forward_cancel(cluster)  # the cluster's leader, on another machine
        except ForwardingError as error:
            err.print(str(error), markup=False)
            return EXIT_TASK_FAILED
        err.print(message, markup=False)
        return EXIT_OK
    message = asyncio.run(cancel_remote_run(control))
    err.print(message, markup=False)
    return EXIT_OK


def tui_command(settings_path: Path) -> int:
    # Imported here, not at the top: `run`, `daemon`, `check` and `demo` never load Textual.
    from order_export_tui.tui import run_dashboard

    return run_dashboard(settings_path)


async def _run_here(
    session: HostedSession,
    on_event: Callable[[object], None],
    trigger: str,
    *,
    since: date | None = None,
    only: list[str] | None = None,
    on_abandon: Callable[[], None] | None = None,
) -> RunReport:
    """One run in this process, through the service: the failure e-mail goes out as for any
    other run. The first Ctrl-C (or SIGTERM) stops at the next batch boundary, the second
    abandons the batch in flight (recorded nowhere, so simply sent again next run)."""
    from order_export_tui.service.remote import RemoteRunError
    from order_export_tui.service.stop_signals import StopSignals

    session.control.subscribe(on_event)

    def announce(name: str, abandon_batch: bool) -> None:
        if abandon_batch and on_abandon is not None:
            on_abandon()

    signals = StopSignals(lambda abandon: session.service.stop(abandon_batch=abandon), announce)
    signals.install()
    answer = await session.control.start_run(
        trigger, since=None if since is None else since.isoformat(), only=only
    )
    if not answer.ok:
        raise RemoteRunError(answer.message)
    report = await session.service.wait_for_run()
    if report is None and session.service.start_failure is not None:
        raise session.service.start_failure  # the state database refused to record it
    assert report is not None  # a run was started: nothing else runs in this process
    return report


# --- resend and retry ----------------------------------------------------------------------


def orders_command(
    command: str, args: argparse.Namespace, settings_path: Path, err: Console
) -> int:
    """`resend ORDER_ID...` / `retry [ORDER_ID...]`, through the running daemon when there
    is one, else in this process holding the state lock as `run` does: 0 when every order is
    confirmed by the destination, 1 when any is not (each named with its reason)."""
    from order_export_tui.service.export_service import OrdersAnswer
    from order_export_tui.service.forwarding import ForwardingError, forward_run, leads_elsewhere
    from order_export_tui.service.remote import RemoteRunError, follow_remote_run, read_status
    from order_export_tui.service.session import hosted_session

    where = daemon_or_here(settings_path, err)
    if where.refused:
        return EXIT_BAD_INPUT
    settings, attached = where.settings, where.attached
    order_ids: list[str] = list(args.order_ids)
    if (
        command == "retry"
        and not order_ids
        and asyncio.run(read_status(settings)).skipped_orders == 0
    ):
        err.print("no skipped orders to re-try", markup=False)
        return EXIT_OK
    display = RunDisplay(err)
    try:
        if attached is not None:
            report = asyncio.run(
                follow_remote_run(attached, display.handle, trigger=command, only=order_ids or None)
            )
        elif (cluster := leads_elsewhere(settings)) is not None:  # the leader carries it out
            report = forward_run(cluster, command, only=order_ids or None, on_event=display.handle)
        else:
            settle_collector()
            with hosted_session(settings, role=command) as session:
                report = asyncio.run(
                    _run_here(session, display.handle, command, only=order_ids or None)
                )
    except (RemoteRunError, StateLockedError, ForwardingError) as error:
        err.print(Text.assemble(("Not started:", "red"), f" {error}"))
        return EXIT_TASK_FAILED
    answer = OrdersAnswer.of(report)
    print_orders_answer(err, answer)
    if args.json:
        sys.stdout.write(json.dumps(answer.as_json()) + "\n")
    if report.outcome == CANCELLED:
        return EXIT_CANCELLED
    return EXIT_OK if answer.all_confirmed else EXIT_TASK_FAILED


def print_orders_answer(err: Console, answer: OrdersAnswer) -> None:
    for line in answer.order_lines():
        err.print(line, markup=False)
    err.print(answer.message, markup=False)


# --- verify ----------------------------------------------------------------------------------


def verify_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    """`verify [--since DAY] [--repair] [--json]` (interfaces.md §8), through the running
    daemon when there is one, else in this process holding the state lock: 0 the copy is
    true (after a confirmed repair too), 1 drift remains or the copy could not be read."""
    from order_export_tui.service.control_client import NotAttachedError
    from order_export_tui.service.forwarding import (
        ForwardingError,
        forward_verify,
        leads_elsewhere,
    )
    from order_export_tui.service.session import hosted_session

    where = daemon_or_here(settings_path, err)
    if where.refused:
        return EXIT_BAD_INPUT
    settings, attached = where.settings, where.attached
    since = None if args.since is None else args.since.isoformat()
    try:
        if attached is not None:
            answer = asyncio.run(attached.verify(since, args.repair))
        elif (cluster := leads_elsewhere(settings)) is not None:  # the leader carries it out
            answer = forward_verify(cluster, since, args.repair)
        else:
            with hosted_session(settings, role="verify") as session:
                session.control.subscribe(RunDisplay(err).handle)  # a repair run's progress
                answer = asyncio.run(session.control.verify(since, args.repair))
    except (NotAttachedError, StateLockedError, ForwardingError) as error:
        err.print(Text.assemble(("Not started:", "red"), f" {error}"))
        return EXIT_TASK_FAILED
    print_verify_answer(err, answer)
    if args.json:
        sys.stdout.write(json.dumps(answer.as_json()) + "\n")
    return EXIT_OK if answer.in_sync else EXIT_TASK_FAILED


def print_verify_answer(err: Console, answer: VerifyAnswer) -> None:
    for line in answer.drift_lines():
        err.print(line, markup=False, highlight=False)
    err.print(answer.summary(), markup=False, highlight=False)
