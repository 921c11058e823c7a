"""The signed-in request path: whop_oauth's middleware + a call to the provider's API as
the user, against the same endpoint with no auth and a fixed ``Authorization`` header.

    python -m bench.middleware_overhead [--requests 30000] [--rounds 15] [--seconds 5]
        [--wrk-rounds 5] [--connections 16] [--only in-process|uvicorn]

Three apps (``bench/_middleware_app.py``), all calling the API through one
``httpx.MockTransport``: ``bare`` (fixed header), ``helper`` (middleware, server-side
session check, ``user_http_client``) and ``auth`` (middleware, ``manager.auth()`` on an
app-owned client). The signed-in ones use a SQLite store and a token that needs no refresh.
Every variant receives the same session cookie, as a browser would send it.

In-process: raw ASGI calls (no HTTP parsing), variants in alternating rounds, medians
of the process's CPU time (so other load on a shared machine does not count).
Under uvicorn (1 worker each) + wrk on loopback, alternating runs, medians; wrk is
Debian's (``bash scripts/install-system-deps.sh --bench``).
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

from . import _middleware_app as apps
from ._harness import alternate, free_port, machine_line, print_table

NAMES = {
    "bare": "bare endpoint, fixed header",
    "helper": "middleware + user_http_client",
    "auth": "middleware + manager.auth()",
}


async def in_process(requests: int, rounds: int, store_url: str) -> None:
    per_round = requests // rounds
    async with apps.seeded_manager(store_url, [0]) as manager:
        cookie = apps.cookie(0)  # sent to every variant, as a browser would
        variants = {}
        for variant in apps.VARIANTS:
            driver = apps.Driver(apps.build(variant, manager))

            async def go(driver: apps.Driver = driver) -> None:
                for _ in range(per_round):
                    if await driver.get(cookie) != 200:
                        raise RuntimeError("the benchmark app did not answer 200")

            variants[NAMES[variant]] = go
        for run in variants.values():  # warm-up: caches filled, code paths hot
            await run()
        series = await alternate(variants, rounds=rounds, clock=time.process_time)
    print_table(
        f"in-process (raw ASGI calls): {requests} GETs in {rounds} alternating rounds, "
        "CPU time of this process, medians",
        series,
        requests=per_round,
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
def uvicorn(variant: str, store_url: str) -> Iterator[tuple[str, int]]:
    """A one-worker uvicorn serving ``variant``; yields the endpoint's URL and its pid."""
    port = free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_STORE": store_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench._middleware_app:app", "--port", str(port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
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


def under_uvicorn(seconds: int, rounds: int, connections: int, store_url: str) -> None:
    if shutil.which("wrk") is None:
        print("\nuvicorn + wrk: skipped (run `bash scripts/install-system-deps.sh --bench`)")
        return
    cookie = apps.cookie(0)
    runs: dict[str, list[WrkRun]] = {variant: [] for variant in apps.VARIANTS}
    with ExitStack() as stack:
        servers = {v: stack.enter_context(uvicorn(v, store_url)) for v in apps.VARIANTS}
        for variant in apps.VARIANTS:
            wrk(servers[variant][0], cookie, 2, connections)  # warm-up
        names = list(apps.VARIANTS)
        for i in range(rounds):
            for variant in names[i % 3 :] + names[: i % 3]:
                url, pid = servers[variant]
                # The cookie goes to every variant, as a browser sends it: the bare app's
                # server parses the same bytes.
                runs[variant].append(wrk(url, cookie, seconds, connections, pid))

    def median(variant: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs[variant])

    print(
        f"\nuvicorn (1 worker, h11) + wrk -t1 -c{connections} on loopback: "
        f"{rounds} alternating {seconds}s runs per variant, medians"
    )
    print(f"  {'variant':<31} {'req/s':>6} {'mean':>8} {'p50':>8} {'p99':>8} "
          f"{'1/req/s':>7} {'latency':>7} {'server CPU':>13} {'ratio':>6}")  # fmt: skip
    for variant in apps.VARIANTS:
        rps, mean = median(variant, "rps"), median(variant, "mean_ms")
        p50, p99 = median(variant, "p50_ms"), median(variant, "p99_ms")
        cpu = median(variant, "cpu_us")
        rps_ratio = median("bare", "rps") / rps
        lat_ratio = mean / median("bare", "mean_ms")
        cpu_ratio = cpu / median("bare", "cpu_us")
        print(f"  {NAMES[variant]:<31} {rps:>6.0f} {mean:>6.2f}ms {p50:>6.2f}ms {p99:>6.2f}ms "
              f"{rps_ratio:>6.2f}x {lat_ratio:>6.2f}x {cpu:>7.0f} µs/req "
              f"{cpu_ratio:>5.2f}x")  # fmt: skip
    print("  ratios to the bare endpoint; 1/req/s: its throughput over this one's (> 1: slower);")
    print("  server CPU: the uvicorn process's CPU time per request; other load on a shared")
    print("  machine inflates it far less than the wall-clock figures, which vary run to run")


async def main(args: argparse.Namespace) -> None:
    print(f"Signed-in request path overhead — {machine_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if args.only in (None, "in-process"):
            await in_process(args.requests, args.rounds, store_url)
        if args.only in (None, "uvicorn"):
            if args.only == "uvicorn":
                async with apps.seeded_manager(store_url, [0]):
                    pass
            await asyncio.to_thread(
                under_uvicorn, args.seconds, args.wrk_rounds, args.connections, store_url
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--wrk-rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", choices=["in-process", "uvicorn"])
    asyncio.run(main(parser.parse_args()))
