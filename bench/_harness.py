"""Shared helpers for the benchmarks: alternating rounds, medians, ratios, a loopback server."""

from __future__ import annotations

import asyncio
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

Run = Callable[[], Awaitable[None]]


@dataclass
class Series:
    """Per-round durations of one variant."""

    name: str
    rounds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)


async def alternate(
    variants: dict[str, Run], *, rounds: int, clock: Callable[[], float] = time.perf_counter
) -> list[Series]:
    """Run each variant once per round, in rotating order, and time each run.

    Alternating on the same machine in the same process keeps drift (CPU frequency,
    other load) from favouring whichever variant ran first. ``clock=time.process_time``
    counts only this process's CPU time: other processes on a busy machine drop out.
    """
    series = {name: Series(name) for name in variants}
    names = list(variants)
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            start = clock()
            await variants[name]()
            series[name].rounds.append(clock() - start)
    return list(series.values())


def print_table(title: str, series: Sequence[Series], *, requests: int, floor: str) -> None:
    base = next(s for s in series if s.name == floor).median
    print(f"\n{title}")
    print(f"  {'variant':<34} {'median/round':>13} {'per request':>12} {'ratio':>7}")
    for s in series:
        per = s.median / requests * 1e6
        print(f"  {s.name:<34} {s.median * 1e3:>10.1f} ms {per:>9.1f} µs {s.median / base:>6.2f}x")


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """An interval that holds the true median with at least ``confidence``, whatever the
    distribution: two order statistics, ``k``-th from either end.

    Each value falls below the median with probability 1/2, so the number below is
    Binomial(n, 1/2); ``k`` is the largest with ``2 * P(B < k) <= 1 - confidence``.
    ``(nan, nan)`` when there are too few values for any such ``k`` (fewer than 6 at 95 %).

    >>> median_interval(range(1, 16))  # 15 values: the 4th and the 12th (96.5 %)
    (4, 12)
    """
    ordered = sorted(values)
    n = len(ordered)
    k, below = 0, 0.0  # below: P(B < k)
    while k < n // 2:
        with_k = below + math.comb(n, k) / 2**n
        if 2 * with_k > 1 - confidence:
            break
        k, below = k + 1, with_k
    if k == 0:
        return float("nan"), float("nan")
    return ordered[k - 1], ordered[n - k]


def interval_text(values: Sequence[float]) -> str:
    """``median_interval`` as the tables print it: ``"0.981-1.020x"``, or ``"none"``."""
    low, high = median_interval(values)
    return "none" if math.isnan(low) else f"{low:.3f}-{high:.3f}x"


def machine_line() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def loopback_server() -> Iterator[str]:
    """A tiny keep-alive HTTP server in its own process; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench._tiny_server", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError("the loopback server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())
