"""The signed-in request path: whop_oauth's middleware + a call to the provider's API as
the user, against the same endpoint with no auth and a fixed ``Authorization`` header.

    python -m bench.middleware_overhead [--requests 30000] [--block 50] [--seconds 2]
        [--wrk-rounds 15] [--connections 16] [--counted-requests 640]
        [--only in-process|uvicorn|instructions]

Three apps (``bench/_middleware_app.py``), all calling the API through one
``httpx.MockTransport``: ``bare`` (fixed header), ``helper`` (middleware, server-side
session check, ``user_http_client``) and ``auth`` (middleware, ``manager.auth()`` on an
app-owned client). The signed-in ones use a SQLite store and a token that needs no refresh.
Every variant receives the same session cookie, as a browser would send it.

In-process: raw ASGI calls (no HTTP parsing), all variants on one API client, in short
alternating rounds (``--block`` requests each), medians of the process's CPU time per
round (so other load on a shared machine does not count, and drift in the machine's
speed hits every variant alike).
Under uvicorn (1 worker each) + wrk on loopback: rounds of new servers and one short run
per variant in rotating order; each ratio is the median of the per-round ratios, since
runs next to each other share the machine's state. wrk is Debian's
(``bash scripts/install-system-deps.sh --bench``).
Under uvicorn and callgrind: the instructions each server executes per request
(``bench/_callgrind.py``), the same from run to run, where wall-clock ratios on a
shared machine move by several percent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from . import _callgrind
from . import _middleware_app as apps
from ._harness import alternate, free_port, machine_line, print_table

NAMES = {
    "bare": "bare endpoint, fixed header",
    "helper": "middleware + user_http_client",
    "auth": "middleware + manager.auth()",
}


async def in_process(requests: int, block: int, store_url: str) -> None:
    rounds = requests // block
    async with apps.seeded_manager(store_url, [0]) as manager:
        cookie = apps.cookie(0)  # sent to every variant, as a browser would
        api = apps.api_client()  # one for every variant: only the auth layers differ
        variants = {}
        for variant in apps.VARIANTS:
            driver = apps.Driver(apps.build(variant, manager, api))

            async def go(driver: apps.Driver = driver) -> None:
                for _ in range(block):
                    if await driver.get(cookie) != 200:
                        raise RuntimeError("the benchmark app did not answer 200")

            variants[NAMES[variant]] = go
        for _ in range(20):  # warm-up: caches filled, code paths hot
            for run in variants.values():
                await run()
        series = await alternate(variants, rounds=rounds, clock=time.process_time)
    print_table(
        f"in-process (raw ASGI calls): {rounds * block} GETs per variant in {rounds} "
        f"alternating rounds of {block}, CPU time of this process, medians",
        series,
        requests=block,
        floor=NAMES["bare"],
    )


@dataclass
class WrkRun:
    rps: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    #: The server process's CPU time per request (user + system), from /proc.
    cpu_us: float = float("nan")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user + system (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: With two cores or more, the server and wrk each get a core of their own, so neither
#: is moved around or made to wait for the other (``taskset``, from util-linux).
_PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
PIN_SERVER = ["taskset", "-c", "1"] if _PINNED else []
PIN_WRK = ["taskset", "-c", "0"] if _PINNED else []

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match is not None, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str, cookie: str | None, seconds: int, connections: int, server: int | None = None
) -> WrkRun:
    """One wrk run; with ``server`` (a pid), also that process's CPU time per request."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if cookie:
        args[1:1] = ["-H", f"Cookie: {cookie}"]
    args[:0] = PIN_WRK
    cpu_before = cpu_seconds(server) if server else 0.0
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server) - cpu_before if server else float("nan")
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    mean = re.search(r"Latency\s+(\S+)", out)
    # The distribution's own lines: "+/- Stdev" columns end in "%" too.
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    assert mean is not None
    assert p50 is not None
    assert p99 is not None
    done = re.search(r"(\d+) requests in", out)
    assert done is not None
    per_request = cpu / int(done.group(1)) * 1e6
    return WrkRun(rps, _ms(mean.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), per_request)


@contextmanager
def uvicorn(variant: str, store_url: str, seed: int) -> Iterator[tuple[str, int]]:
    """A one-worker uvicorn serving ``variant``; yields the endpoint's URL and its pid."""
    port = free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_STORE": store_url}
    env["PYTHONHASHSEED"] = str(seed)
    proc = subprocess.Popen(
        [*PIN_SERVER, sys.executable, "-m", "uvicorn", "bench._middleware_app:app",
         "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/me"
        for _ in range(200):
            try:
                httpx.get(url)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


#: The runs under uvicorn: each variant, and the bare app a second time in its own
#: server, whose ratio to the first is what the machine's noise alone makes of 1.00x.
SERVERS = {"bare": "bare", "bare again": "bare", "helper": "helper", "auth": "auth"}
NOISE = "bare endpoint again (noise)"


def under_uvicorn(seconds: int, rounds: int, connections: int, store_url: str) -> None:
    if shutil.which("wrk") is None:
        print("\nuvicorn + wrk: skipped (run `bash scripts/install-system-deps.sh --bench`)")
        return
    cookie = apps.cookie(0)
    runs: dict[str, list[WrkRun]] = {label: [] for label in SERVERS}
    labels = list(SERVERS)
    for i in range(rounds):
        # New servers every round: one process of the same app can run a few percent
        # faster or slower than the next (memory layout), as much as the difference
        # measured here, so each round draws its own. The servers of a round share
        # one hash seed, so no variant gets a luckier dict layout than another.
        with ExitStack() as stack:
            servers = {
                label: stack.enter_context(uvicorn(variant, store_url, seed=i))
                for label, variant in SERVERS.items()
            }
            for label in labels:
                wrk(servers[label][0], cookie, 1, connections)  # warm-up
            shift = i % len(labels)
            for label in labels[shift:] + labels[:shift]:
                url, pid = servers[label]
                # The cookie goes to every variant, as a browser sends it: the bare app's
                # server parses the same bytes.
                runs[label].append(wrk(url, cookie, seconds, connections, pid))

    def median(label: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs[label])

    def paired(label: str, field: str, *, inverse: bool = False) -> float:
        """The median over rounds of this server's figure over the bare one's that round."""
        ratios = []
        for this, bare in zip(runs[label], runs["bare"], strict=True):
            ratio = getattr(this, field) / getattr(bare, field)
            ratios.append(1 / ratio if inverse else ratio)
        return statistics.median(ratios)

    print(
        f"\nuvicorn (1 worker, h11) + wrk -t1 -c{connections} on loopback: "
        f"{rounds} rounds of new servers and one {seconds}s run each in rotating order, medians"
    )
    print(f"  {'variant':<31} {'req/s':>6} {'mean':>8} {'p50':>8} {'p99':>8} "
          f"{'server CPU':>13} {'1/req/s':>7} {'latency':>7} {'CPU':>6}")  # fmt: skip
    for label in labels:
        name = NOISE if label == "bare again" else NAMES[label]
        rps, mean = median(label, "rps"), median(label, "mean_ms")
        p50, p99 = median(label, "p50_ms"), median(label, "p99_ms")
        cpu = median(label, "cpu_us")
        throughput, latency = paired(label, "rps", inverse=True), paired(label, "mean_ms")
        print(f"  {name:<31} {rps:>6.0f} {mean:>6.2f}ms {p50:>6.2f}ms {p99:>6.2f}ms "
              f"{cpu:>7.0f} µs/req {throughput:>6.2f}x {latency:>6.2f}x "
              f"{paired(label, 'cpu_us'):>5.2f}x")  # fmt: skip
    print("  ratios to the bare endpoint, each the median over rounds of that round's ratio")
    print("  (runs next to each other share the machine's state); 1/req/s: the bare")
    print("  throughput over this one's (> 1: slower); latency: mean latency; CPU: the")
    print("  uvicorn process's CPU time per request. The bare app's second server shows")
    print("  how far from 1.00x the machine's noise alone puts a ratio")


def instructions(requests: int, store_url: str) -> None:
    if not _callgrind.available():
        print("\nuvicorn under callgrind: skipped (no valgrind)")
        return
    cookie = apps.cookie(0)
    # The bare app twice, first and last: how far apart its two counts are is how
    # precise the figures are.
    order = ["bare", "helper", "auth", "bare"]
    counts: dict[str, list[float]] = {variant: [] for variant in apps.VARIANTS}
    for variant in order:
        counts[variant].append(
            _callgrind.instructions_per_request(variant, store_url, cookie, requests)
        )
    bare = statistics.mean(counts["bare"])
    print(
        f"\nuvicorn (1 worker, h11) under callgrind: instructions the server executes per "
        f"request, over {requests} GETs on {_callgrind.CONNECTIONS} connections"
    )
    print(f"  {'variant':<31} {'instructions/request':>21} {'ratio':>6}")
    for variant in apps.VARIANTS:
        per = statistics.mean(counts[variant])
        print(f"  {NAMES[variant]:<31} {per:>21,.0f} {per / bare:>5.3f}x")
    first, last = counts["bare"]
    apart = abs(first - last) / bare
    print(f"  the bare server counted twice (first and last): {apart:.2%} apart;")
    print("  instructions, not time: the same every run, but a cache miss counts as one")


async def main(args: argparse.Namespace) -> None:
    print(f"Signed-in request path overhead — {machine_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.only in (None, "in-process"):
            await in_process(args.requests, args.block, store_url)
        if args.only in (None, "uvicorn"):
            if args.only == "uvicorn":
                async with apps.seeded_manager(store_url, [0]):
                    pass
            await asyncio.to_thread(
                under_uvicorn, args.seconds, args.wrk_rounds, args.connections, store_url
            )
        if args.only in (None, "instructions"):
            if args.only == "instructions":
                async with apps.seeded_manager(store_url, [0]):
                    pass
            await asyncio.to_thread(instructions, args.counted_requests, store_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--wrk-rounds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--counted-requests", type=int, default=640)
    parser.add_argument("--only", choices=["in-process", "uvicorn", "instructions"])
    asyncio.run(main(parser.parse_args()))
