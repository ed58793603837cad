"""The `order-export` command line (interfaces.md §1): argument parsing and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console

from order_export_tui import __version__
from order_export_tui.daemon import configure_logging
from order_export_tui.daemon import serve as serve_daemon
from order_export_tui.engine.events import CANCELLED, SUCCEEDED, RunReport
from order_export_tui.engine.runner import ExportEngine
from order_export_tui.run_display import RunDisplay, print_summary
from order_export_tui.service.export_service import ExportService, OrdersAnswer
from order_export_tui.service.intake import IntakeError
from order_export_tui.service.wiring import (
    build_destination,
    build_source,
    check_available,
    startup_problems,
)
from order_export_tui.settings import (
    Settings,
    SettingsError,
    default_settings_path,
    load_settings,
    missing_secrets,
)
from order_export_tui.sources.demo import generate_demo_erp
from order_export_tui.state import StateLock, StateLockedError, StateStore
from order_export_tui.transport.retry import Retrier, RetryPolicy

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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
    run.add_argument(
        "--since",
        type=_since_date,
        metavar="YYYY-MM-DD",
        help="this once, every order dated on or after this day, beyond max_days_to_export",
    )
    add_order_commands(commands, settings_option)
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


def _since_date(text: str) -> date:
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date as YYYY-MM-DD (got {text!r})") from None
    if day > date.today():
        raise argparse.ArgumentTypeError(f"{text} is in the future")
    return day


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
    err = Console(stderr=True, highlight=False)
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
        if command == "daemon":
            return daemon_command(settings_path, err)
        if command == "tui":
            return tui_command(settings_path)
    except SettingsError as error:
        err.print("[red]The settings are not valid:[/]", markup=True)
        for problem in error.problems:
            err.print(f"  {problem}", markup=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    raise AssertionError(f"unhandled command {command!r}")  # argparse allows no other


def demo_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    settings = load_settings(settings_path)
    path = settings.demo_database_path
    generate_demo_erp(
        path, orders=args.orders, seed=args.seed, days=args.days, malformed=args.malformed
    )
    err.print(
        f"demo ERP at {path}: {args.orders} orders over {args.days} days"
        f" (seed {args.seed}, {args.malformed} malformed)",
        markup=False,
    )
    return EXIT_OK


def check_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    settings = load_settings(settings_path)
    problems = check_available(settings)
    secrets = missing_secrets(settings)
    if args.connect:
        problems += secrets
    else:
        for warning in secrets:
            err.print(f"warning: {warning}", markup=False)
    if not problems and args.connect:
        problems += asyncio.run(_connect_problems(settings))
    if problems:
        err.print("[red]Problems:[/]", markup=True)
        for problem in problems:
            err.print(f"  {problem}", markup=False)
        return EXIT_BAD_INPUT
    err.print(f"{settings_path}: settings are valid", markup=False)
    return EXIT_OK


async def _connect_problems(settings: Settings) -> list[str]:
    problems = []
    retrier = Retrier(RetryPolicy(0, 0))
    source = build_source(settings, retrier)
    try:
        check = getattr(source, "check_connection", None)
        if check is not None:
            await check()
        else:
            await source.count_orders(datetime(1970, 1, 1, tzinfo=UTC))
    except Exception as error:
        problems.append(f"erp.source: cannot read the ERP: {error}")
    finally:
        await source.close()
    destination = build_destination(settings)
    try:
        await destination.check_connection()
    except Exception as error:
        problems.append(f"destination.app: cannot use {destination.name}: {error}")
    finally:
        await destination.close()
    return problems


def run_command(args: argparse.Namespace, settings_path: Path, err: Console) -> int:
    settings = load_settings(settings_path)
    problems = startup_problems(settings)
    if problems:
        for problem in problems:
            err.print(problem, markup=False)
        return EXIT_BAD_INPUT
    database = settings.state_database_path
    try:
        with StateLock(database, role="run"):
            report = asyncio.run(_run_once(settings, database, err, since=args.since))
    except StateLockedError as error:
        err.print(f"[red]Not started:[/] {error}", markup=True)
        return EXIT_TASK_FAILED
    print_summary(err, report)
    if args.json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
    if report.outcome == SUCCEEDED:
        return EXIT_OK
    return EXIT_CANCELLED if report.outcome == CANCELLED else EXIT_TASK_FAILED


def daemon_command(settings_path: Path, err: Console) -> int:
    settings = load_settings(settings_path)
    problems = startup_problems(settings)
    if problems:
        for problem in problems:
            err.print(problem, markup=False)
        return EXIT_BAD_INPUT
    configure_logging()
    try:
        with StateLock(settings.state_database_path, role="daemon"):
            asyncio.run(serve_daemon(settings))
    except StateLockedError as error:
        err.print(f"Not started: {error}", markup=False)
        return EXIT_TASK_FAILED
    except IntakeError as error:
        err.print(f"Not started: {error}", markup=False)
        return EXIT_TASK_FAILED
    return EXIT_OK


def tui_command(settings_path: Path) -> int:
    # Imported here, not at the top: `run`, `daemon`, `check` and `demo` never load Textual.
    from order_export_tui.tui import run_dashboard

    return run_dashboard(settings_path)


async def _run_once(
    settings: Settings, database: Path, err: Console, *, since: date | None = None
) -> RunReport:
    state = StateStore(database)
    try:
        engine = ExportEngine(
            settings, state, source_factory=build_source, destination_factory=build_destination
        )
        display = RunDisplay(err)
        engine.subscribe(display.handle)
        task = (
            engine.start_run("manual")
            if since is None
            else engine.start_run("backfill", since=since)
        )
        _stop_on_signals(engine, task, err)
        try:
            return await task
        except asyncio.CancelledError:
            if engine.last_report is None:
                raise
            return engine.last_report
    finally:
        state.close()


def _stop_on_signals(engine: ExportEngine, task: asyncio.Task[RunReport], err: Console) -> None:
    """First Ctrl-C (or SIGTERM): stop at the next batch boundary. Second: abandon the batch
    in flight (nothing of it is recorded, so the next run simply sends it again)."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not engine.cancel():
            err.print("stopping now; the batch in flight will be sent again next run")
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)


# --- resend and retry ----------------------------------------------------------------------


def orders_command(
    command: str, args: argparse.Namespace, settings_path: Path, err: Console
) -> int:
    """`resend ORDER_ID...` / `retry [ORDER_ID...]` in this process, holding the state lock
    as `run` does: 0 when every order is confirmed by the destination, 1 when any is not
    (each named with its reason)."""
    settings = load_settings(settings_path)
    problems = startup_problems(settings)
    if problems:
        for problem in problems:
            err.print(problem, markup=False)
        return EXIT_BAD_INPUT
    order_ids: list[str] = list(args.order_ids)
    database = settings.state_database_path
    try:
        with StateLock(database, role=command):
            answer = asyncio.run(_orders_here(settings, database, command, order_ids))
    except StateLockedError as error:
        err.print(f"[red]Not started:[/] {error}", markup=True)
        return EXIT_TASK_FAILED
    print_orders_answer(err, answer)
    if args.json:
        sys.stdout.write(json.dumps(answer.as_json()) + "\n")
    if answer.report is not None and answer.report.outcome == CANCELLED:
        return EXIT_CANCELLED
    if not answer.started:
        return EXIT_TASK_FAILED
    return EXIT_OK if answer.all_confirmed else EXIT_TASK_FAILED


async def _orders_here(
    settings: Settings, database: Path, command: str, order_ids: list[str]
) -> OrdersAnswer:
    state = StateStore(database)
    try:
        engine = ExportEngine(
            settings, state, source_factory=build_source, destination_factory=build_destination
        )
        service = ExportService(settings, engine)
        if command == "resend":
            return await service.resend(order_ids)
        return await service.retry(order_ids or None)
    finally:
        state.close()


def print_orders_answer(err: Console, answer: OrdersAnswer) -> None:
    width = max((len(order.order_id) for order in answer.orders), default=0)
    for order in answer.orders:
        status = order.status.replace("_", " ")
        err.print(f"{order.order_id:<{width}}  {status}: {order.reason}", markup=False)
    err.print(answer.message, markup=False)
