"""uvicorn servers of the benchmark apps, and wrk runs against them (Linux, Debian's wrk)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from ._harness import free_port

__all__ = [
    "PIN_SERVER",
    "PIN_WRK",
    "WrkRun",
    "cpu_seconds",
    "start_wrk",
    "uvicorn",
    "wrk",
    "wrk_result",
]


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


def start_wrk(
    url: str,
    cookie: str | None,
    seconds: int,
    connections: int,
    script: os.PathLike[str] | None = None,
) -> subprocess.Popen[str]:
    """A wrk run in the background, pinned to wrk's core; ``wrk_result`` reads it.

    ``script``: a wrk Lua script (its ``request`` picks each request's path).
    """
    args = [*PIN_WRK, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if cookie:
        args[-1:-1] = ["-H", f"Cookie: {cookie}"]
    if script is not None:
        args[-1:-1] = ["-s", os.fspath(script)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def wrk(
    url: str, cookie: str | None, seconds: int, connections: int, server: int | None = None
) -> WrkRun:
    """One wrk run; with ``server`` (a pid), also that process's CPU time per request."""
    cpu_before = cpu_seconds(server) if server else 0.0
    run = start_wrk(url, cookie, seconds, connections)
    out = run.communicate()[0]
    cpu = cpu_seconds(server) - cpu_before if server else float("nan")
    return wrk_result(out, cpu)


def wrk_result(out: str, cpu: float = float("nan")) -> WrkRun:
    """What wrk printed, with the server's CPU seconds over the run (``cpu``) per request."""
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
def uvicorn(
    variant: str,
    store_url: str,
    seed: int,
    *,
    launcher: Sequence[str] = PIN_SERVER,
    ready_within: float = 10.0,
) -> Iterator[tuple[str, int]]:
    """A one-worker uvicorn serving ``variant``; yields the endpoint's URL and its pid.

    ``launcher`` runs before Python in the same process (``taskset``, ``valgrind``), so
    the pid is the server's.
    """
    port = free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_STORE": store_url}
    env["PYTHONHASHSEED"] = str(seed)
    proc = subprocess.Popen(
        [*launcher, sys.executable, "-m", "uvicorn", "bench._middleware_app:app",
         "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/me"
        deadline = time.monotonic() + ready_within
        while True:
            try:
                httpx.get(url, timeout=ready_within)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"uvicorn serving {variant!r} did not start") from None
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)
