"""The webhook intake under a sender without the secret: latency of valid requests, peak RSS.

    python benchmarks/intake_abuse.py                # 300 idle, 20 slow, 100 slow bodies
    python benchmarks/intake_abuse.py --seconds 20 --requests 300

The intake (the real Intake and IntakeServer with their default limits) runs in a child
process, so that its memory is measured alone (VmRSS sampled every 50 ms); the attacker is a
second child process, so that its load does not delay the measuring client's own loop.
Loopback only; bounded in count and time. Two phases in the same run, each sending the same
valid signed order-completed events (4 senders, one after the other each):

1. baseline: no abuse;
2. abuse: 300 idle connections, 20 connections sending their headers one byte every 0.5 s and
   100 connections sending ~0.94 MiB bodies 4 KiB every 0.5 s with a well-formed but forged
   X-Signature. An attacker whose connection is closed connects again 0.1 s later, until the
   phase ends.

Targets (issue 15): p99 of valid requests under 250 ms and peak RSS under 150 MB under abuse.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from order_export_tui.service.intake import signature_for  # noqa: E402
from tests.support.orders import VALID  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SECRET = "benchmark-secret-of-32-bytes-ok!"
BODY_BYTES = 985_000  # ~0.94 MiB, under the 1 MiB limit
FORGED = "sha256=" + "0" * 64
IDLE, SLOW_HEADERS, SLOW_BODIES = 300, 20, 100


# --- the intake, in its own process -----------------------------------------------------------


async def serve(port: int, database: Path) -> None:
    from order_export_tui.engine.runner import local_now
    from order_export_tui.service.intake import Intake, IntakeServer
    from order_export_tui.state import StateStore

    state = StateStore(database, durable=True)
    intake = Intake(
        state=state,
        secret=SECRET,
        clock=local_now,
        on_accepted=lambda event_id: None,
        health=dict,
    )
    server = IntakeServer(intake, f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    await server.stop()
    state.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- the traffic ------------------------------------------------------------------------------


async def valid_traffic(url: str, requests: int, tag: str) -> tuple[list[float], int]:
    """Round trips of `requests` valid signed events from 4 senders; and how many failed."""
    latencies: list[float] = []
    failures = 0

    async def sender(n: int, client: httpx.AsyncClient) -> None:
        nonlocal failures
        for i in range(requests // 4):
            doc = copy.deepcopy(VALID)
            doc["order_id"] = f"{tag}-{n}-{i}"
            body = orjson.dumps(doc)
            started = time.perf_counter()
            try:
                answer = await client.post(
                    "/webhooks/order-completed",
                    content=body,
                    headers={"X-Signature": signature_for(SECRET, body)},
                )
                if answer.status_code != 202:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(*(sender(n, client) for n in range(4)))
    return latencies, failures


def _head(length: int) -> bytes:
    return (
        "POST /webhooks/order-completed HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        f"X-Signature: {FORGED}\r\n\r\n"
    ).encode()


async def attacker(port: int, kind: str, until: float, counts: dict[str, int]) -> None:
    """One hostile connection, opened again whenever the server closes it."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["refused"] += 1
            await asyncio.sleep(0.1)
            continue
        counts["opened"] += 1
        try:
            if kind == "slow-headers":
                for byte in _head(100):
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.5)
                    if reader.at_eof() or time.monotonic() >= until:
                        break
            elif kind == "slow-body":
                writer.write(_head(BODY_BYTES))
                sent = 0
                while sent < BODY_BYTES and time.monotonic() < until and not reader.at_eof():
                    writer.write(b" " * 4096)
                    await writer.drain()
                    sent += 4096
                    await asyncio.sleep(0.5)
            # idle (and whatever is left): wait for the server to close, or the phase to end
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(), max(0.0, until - time.monotonic()))
        except OSError:
            pass
        finally:
            writer.close()
            counts["closed by server"] += 1 if time.monotonic() < until else 0
        await asyncio.sleep(0.1)  # then at it again


async def attack(port: int, seconds: float) -> None:
    """The hostile sender, in a process of its own (its load must not slow the measurer)."""
    counts = {"opened": 0, "closed by server": 0, "refused": 0}
    until = time.monotonic() + seconds
    kinds = ["idle"] * IDLE + ["slow-headers"] * SLOW_HEADERS + ["slow-body"] * SLOW_BODIES
    await asyncio.gather(*(attacker(port, kind, until, counts) for kind in kinds))
    counts["cpu seconds"] = cpu_seconds(os.getpid())
    print(orjson.dumps(counts).decode(), flush=True)


async def measure(seconds: float, requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="order-export-abuse-") as folder:
        port = free_port()
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), str(Path(folder) / "state.sqlite")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}"
        peak = {"baseline": 0, "abuse": 0}
        phase = "baseline"

        async def sample() -> None:
            while True:
                peak[phase] = max(peak[phase], rss_bytes(child.pid))
                await asyncio.sleep(0.05)

        sampling = asyncio.create_task(sample())
        idle_rss = rss_bytes(child.pid)
        cpu = {"baseline": cpu_seconds(child.pid)}
        started = time.perf_counter()
        baseline, baseline_failures = await valid_traffic(url, requests, "BASE")
        cpu["baseline"] = cpu_seconds(child.pid) - cpu["baseline"]
        took = {"baseline": time.perf_counter() - started}

        phase = "abuse"
        attack = subprocess.Popen(
            [sys.executable, __file__, "--attack", str(port), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        await asyncio.sleep(min(5.0, seconds / 3))  # let the attack build up first
        cpu["abuse"] = cpu_seconds(child.pid)
        started = time.perf_counter()
        abused, abused_failures = await valid_traffic(url, requests, "ABUSE")
        cpu["abuse"] = cpu_seconds(child.pid) - cpu["abuse"]
        took["abuse"] = time.perf_counter() - started
        out, _ = await asyncio.get_running_loop().run_in_executor(
            None, lambda: attack.communicate(timeout=seconds + 60)
        )
        counts = orjson.loads(out)
        attack_cpu = counts.pop("cpu seconds")
        await asyncio.sleep(1.0)
        after_rss = rss_bytes(child.pid)
        sampling.cancel()
        child.stdin.close()
        child.wait(30)

    def p(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    mb = 1e6
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{requests} valid signed requests per phase; abuse: {IDLE} idle, {SLOW_HEADERS} slow"
        f" headers, {SLOW_BODIES} slow ~0.94 MiB bodies for {seconds:g} s"
    )
    for name, values, failures in (
        ("baseline", baseline, baseline_failures),
        ("abuse   ", abused, abused_failures),
    ):
        print(
            f"  {name}  p50 {statistics.median(values) * 1000:6.1f} ms  p99 {p(values, 0.99):6.1f}"
            f" ms  max {max(values) * 1000:6.1f} ms  not 202: {failures}"
            f"  peak RSS {peak[name.strip()] / mb:6.1f} MB"
            f"  intake CPU {cpu[name.strip()] / took[name.strip()] * 100:4.0f} %"
        )
    print(f"  p99 ratio abuse/baseline {p(abused, 0.99) / p(baseline, 0.99):.2f}")
    print(
        f"  the attacker process used {attack_cpu / seconds * 100:.0f} % of a core; load average"
        f" at the end (the machine is shared): {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  RSS: idle {idle_rss / mb:.1f} MB, after the attack {after_rss / mb:.1f} MB;"
        f" hostile connections opened {counts['opened']}, closed by the server"
        f" {counts['closed by server']}, refused at connect {counts['refused']}"
    )
    ok = p(abused, 0.99) < 250 and peak["abuse"] < 150 * mb and abused_failures == 0
    print(f"  targets (p99 < 250 ms, peak RSS < 150 MB, every valid request 202): {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the abuse phase")
    parser.add_argument("--requests", type=int, default=400, help="valid requests per phase")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DATABASE"), help=argparse.SUPPRESS)
    parser.add_argument("--attack", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(int(args.serve[0]), Path(args.serve[1])))
        return
    if args.attack:
        asyncio.run(attack(int(args.attack[0]), float(args.attack[1])))
        return
    asyncio.run(measure(min(args.seconds, 120.0), min(args.requests, 4000)))


if __name__ == "__main__":
    main()
