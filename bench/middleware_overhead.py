"""Middleware overhead: an endpoint behind whop_oauth's middleware + session + store
lookup, against the same endpoint with no auth.

    python -m bench.middleware_overhead [--requests 20000] [--rounds 5] [--seconds 10]

In-process (httpx.ASGITransport, alternating rounds) and under uvicorn with wrk on
loopback (when Debian's wrk is installed: `apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from . import _middleware_app
from ._harness import alternate, free_port, machine_line, print_table


async def in_process(requests: int, rounds: int, tmp: Path) -> None:
    per_round = requests // rounds
    variants = {}
    clients = []
    for variant in ("bare", "auth"):
        app, cookie = _middleware_app.build(variant, str(tmp / "inproc.db"))
        headers = {"cookie": cookie} if cookie else {}
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url=_middleware_app.ORIGIN, headers=headers)
        clients.append(client)

        async def go(client: httpx.AsyncClient = client) -> None:
            for _ in range(per_round):
                response = await client.get("/whoami")
                if response.text != _middleware_app.USER:
                    raise RuntimeError(f"unexpected answer {response.status_code}")

        variants[f"{variant} app"] = go
    for run in variants.values():
        await run()
    series = await alternate(variants, rounds=rounds)
    print_table(f"in-process (ASGITransport): {requests} GETs in {rounds} rounds", series,
                requests=per_round, floor="bare app")
    for client in clients:
        await client.aclose()


def _wrk(url: str, cookie: str, seconds: int) -> tuple[float, float]:
    """(requests/s, mean latency ms) from one wrk run."""
    args = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", url]
    if cookie:
        args[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    assert lat is not None
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[lat.group(2)]
    return rps, float(lat.group(1)) * scale


def under_uvicorn(seconds: int, rounds: int, tmp: Path) -> None:
    if shutil.which("wrk") is None:
        print("\nuvicorn + wrk: skipped (install Debian's wrk: apt-get install -y wrk)")
        return
    results: dict[str, list[tuple[float, float]]] = {"bare": [], "auth": []}
    for variant in ("bare", "auth"):
        port = free_port()
        env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_DB": str(tmp / "uvicorn.db")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench._middleware_app:app", "--port", str(port),
             "--no-access-log", "--log-level", "warning"], env=env)
        try:
            url = f"http://127.0.0.1:{port}/whoami"
            for _ in range(100):
                try:
                    httpx.get(url)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            _, cookie = _middleware_app.build(variant, str(tmp / "cookie.db"))
            _wrk(url, cookie, 2)  # warm-up
            for _ in range(rounds):
                results[variant].append(_wrk(url, cookie, seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    bare = sorted(r[1] for r in results["bare"])[rounds // 2]
    auth = sorted(r[1] for r in results["auth"])[rounds // 2]
    bare_rps = sorted(r[0] for r in results["bare"])[rounds // 2]
    auth_rps = sorted(r[0] for r in results["auth"])[rounds // 2]
    print(f"\nuvicorn (1 worker) + wrk -c32, {rounds} x {seconds}s runs, medians")
    print(f"  bare app   {bare_rps:>9.0f} req/s  mean latency {bare:.2f} ms")
    print(f"  auth app   {auth_rps:>9.0f} req/s  mean latency {auth:.2f} ms")
    print(f"  latency ratio auth/bare: {auth / bare:.2f}x")


async def main(requests: int, rounds: int, seconds: int) -> None:
    print(f"Middleware overhead — {machine_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        await in_process(requests, rounds, Path(tmp))
        await asyncio.to_thread(under_uvicorn, seconds, 3, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds, args.seconds))
