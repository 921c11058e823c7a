"""A real redis-server on a free loopback port, for tests in any folder.

    with run_redis_server(tmp_dir) as url:   # "redis://127.0.0.1:PORT/0"
        ...

The server runs without persistence and is stopped (by its PID) on exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary() -> str:
    binary = REDIS_SERVER if os.path.exists(REDIS_SERVER) else shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: run `make system-deps` (apt-get install redis-server)"
        )
    return binary


def _wait_until_up(process: subprocess.Popen[bytes], port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
            except redis.ConnectionError:
                time.sleep(0.01)
            else:
                return True
        return False
    finally:
        client.close()


@contextmanager
def run_redis_server(workdir: Path) -> Iterator[str]:
    """Start redis-server in ``workdir``; yield its URL; stop it at the end."""
    binary = _binary()
    for _ in range(3):  # another process may take the free port before redis binds it
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        process = subprocess.Popen(
            [*args, "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_until_up(process, port):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def flush(url: str) -> None:
    """Empty the Redis at ``url`` (between tests)."""
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()
