"""Pieces the store benchmarks share: throw-away redis-server and PostgreSQL, RSS."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from bench._harness import free_port

# The tests' PostgreSQL launcher (initdb in a temporary directory, as the postgres user).
sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "support"))
from postgres_server import run_postgres_server

#: Durable as SQLite's WAL with synchronous=NORMAL: fsync on, commits not waited for.
POSTGRES_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "off"}


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on a free loopback port (``POSTGRES_SETTINGS``); yields its URL."""
    with run_postgres_server(POSTGRES_SETTINGS) as server:
        yield server.url


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port (no persistence); yields its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir]
        process = subprocess.Popen(
            [*args, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
        )
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=10)


def rss_mib() -> float:
    """This process's resident memory now, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
