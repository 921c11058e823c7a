"""A throw-away PostgreSQL server from Debian's packages, for tests in any folder.

    with run_postgres_server() as server:   # server.url, server.restart(), server.reset()
        ...

initdb refuses to run as root, so under root the server runs as the ``postgres``
user (the data directory is made under /tmp and handed to it). It listens on a free
loopback port with password (SCRAM) authentication, and is stopped by PID.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

USER = "whop"
PASSWORD = "pg-test-secret-7f3a"
#: Settings for speed: the data is thrown away. Connections for 4 workers' pools and more.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def binaries() -> Path | None:
    """The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    if found:
        return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent
    postgres = shutil.which("postgres")
    return Path(postgres).parent if postgres else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One server in a temporary directory; ``start``, ``stop`` (fast), ``restart``."""

    def __init__(self, bindir: Path, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = {**SETTINGS, **(settings or {})}
        self.workdir = Path(tempfile.mkdtemp(prefix="whop-pg-"))
        self.data = self.workdir / "data"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        secret = self.workdir / "pwfile"
        secret.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(secret, self._as["user"], self._as["group"])
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(secret),
             "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir,
            **self._as,
        )  # fmt: skip
        secret.unlink()

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self, port: int | None = None) -> None:
        self.port = port or free_port()
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-k", str(self.workdir)]  # fmt: skip
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        with open(self.workdir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=log, cwd=self.workdir, **self._as
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
            except psycopg.OperationalError:
                time.sleep(0.05)
            else:
                return
        raise RuntimeError(f"postgres did not start: {self.log_tail()}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, the data is kept."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start(self.port)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, *, full: bool = False) -> str:
        """The server's log (its last 2,000 characters unless ``full``)."""
        try:
            text = (self.workdir / "server.log").read_text()
        except OSError:
            return "(no log)"
        return text if full else text[-2000:]

    def reset(self) -> None:
        """Drop every schema a test made, so the next test starts from an empty database."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname NOT IN ('public', 'information_schema')"
            ).fetchall()
            for (name,) in rows:
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def run_postgres_server(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """initdb a new cluster, start it on a free port; stop it and delete it at the end.
    ``settings`` override the test ones (``SETTINGS``), e.g. ``{"fsync": "on"}``."""
    bindir = binaries()
    if bindir is None:
        pytest.fail(
            "PostgreSQL is not installed: run `make system-deps` (apt-get install postgresql)"
        )
    server = PostgresServer(bindir, settings)
    try:
        for attempt in range(3):  # another process may take the free port first
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield server
    finally:
        server.remove()
