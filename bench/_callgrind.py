"""A uvicorn server's instructions per request, counted by valgrind's callgrind.

Wall-clock figures on a shared machine move by several percent from one run to the
next; an instruction count does not: the same code, inputs and hash seed give the
same count, whatever else the machine is doing. It is not time (a cache miss costs
one instruction here and a hundred cycles there), so it complements wrk's figures
and does not replace them.

The server starts uninstrumented (fast), is warmed up, then instrumented; the count
is zeroed, a fixed number of requests is sent on already open connections, and the
count is dumped. Nothing is in flight at the zero and at the dump, so the total over
the requests sent is the server's whole cost of them: HTTP parsing, the event loop,
the app, and garbage collection.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from ._uvicorn import uvicorn

__all__ = ["available", "instructions_per_request"]

#: Concurrent connections, as wrk's ``-c16`` in the timed runs.
CONNECTIONS = 16


VALGRIND = shutil.which("valgrind")
CONTROL = shutil.which("callgrind_control")


def available() -> bool:
    return VALGRIND is not None and CONTROL is not None


async def _send(client: httpx.AsyncClient, url: str, requests: int) -> None:
    async def one_connection() -> None:
        for _ in range(requests // CONNECTIONS):
            if (await client.get(url)).status_code != 200:
                raise RuntimeError("the benchmark app did not answer 200")

    await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))


def _control(*args: str) -> None:
    subprocess.run([str(CONTROL), *args], check=True, capture_output=True)


def _total(out: Path) -> int:
    """The instruction total of the newest dump callgrind wrote for ``out``."""
    dumps = sorted(out.parent.glob(out.name + "*"), key=lambda path: path.stat().st_mtime)
    match = re.search(r"^(?:summary|totals): (\d+)", dumps[-1].read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no total in {dumps[-1]}")
    return int(match.group(1))


def instructions_per_request(variant: str, store_url: str, cookie: str, requests: int) -> float:
    """Instructions the uvicorn process of ``variant`` executes per request, on average."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        valgrind = [str(VALGRIND), "-q", "--tool=callgrind", "--instr-atstart=no"]
        # One hash seed for every server: the same dict and set layouts in each.
        server = uvicorn(
            variant,
            store_url,
            seed=0,
            launcher=[*valgrind, f"--callgrind-out-file={out}"],
            ready_within=120,  # valgrind's start is slow
        )
        with server as (url, pid):
            limits = httpx.Limits(max_connections=CONNECTIONS)

            async def run() -> None:
                async with httpx.AsyncClient(
                    limits=limits, timeout=60, headers={"Cookie": cookie}
                ) as client:
                    await _send(client, url, 20 * CONNECTIONS)  # warm-up, uninstrumented
                    _control("--instr=on", str(pid))
                    await _send(client, url, 4 * CONNECTIONS)  # warm-up, instrumented
                    _control("--zero", str(pid))
                    await _send(client, url, requests)
                    _control("--dump", str(pid))

            asyncio.run(run())
            time.sleep(0.5)  # the dump is written by the server process
            return _total(out) / (requests // CONNECTIONS * CONNECTIONS)
