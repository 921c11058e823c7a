"""The embedded default: one SQLite file in WAL mode, shared safely by the processes of a host."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from .._errors import StaleWriteError, TokenStoreError
from .._token import Token, TokenKey
from ._base import DEFAULT_RETENTION, StoredToken, next_version, purge_at
from ._crypto import TokenCipher
from ._lease import LeaseLocking, ReleaseSignals

__all__ = ["SQLiteTokenStore"]

T = TypeVar("T")
# Plain literals (no string building), each keyed by the four parts of a TokenKey.
_GET = (
    "SELECT version, blob FROM whop_oauth_grants "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
_VERSION = (
    "SELECT version FROM whop_oauth_grants "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
_PUT = "INSERT OR REPLACE INTO whop_oauth_grants VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE = (
    "DELETE FROM whop_oauth_grants WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
_LOCK_EXPIRY = (
    "SELECT expires_at FROM whop_oauth_locks "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
_LOCK_TAKE = "INSERT OR REPLACE INTO whop_oauth_locks VALUES (?, ?, ?, ?, ?, ?)"
_LOCK_RENEW = (
    "UPDATE whop_oauth_locks SET expires_at = ? "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ? AND holder = ?"
)
_LOCK_RELEASE = (
    "DELETE FROM whop_oauth_locks "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ? AND holder = ?"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS whop_oauth_grants (
    tenant TEXT NOT NULL, user TEXT NOT NULL, issuer TEXT NOT NULL, client_id TEXT NOT NULL,
    version INTEGER NOT NULL, expires_at REAL, updated_at REAL NOT NULL,
    purge_at REAL NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (tenant, user, issuer, client_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS whop_oauth_grants_purge ON whop_oauth_grants (purge_at);
CREATE TABLE IF NOT EXISTS whop_oauth_locks (
    tenant TEXT NOT NULL, user TEXT NOT NULL, issuer TEXT NOT NULL, client_id TEXT NOT NULL,
    holder TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (tenant, user, issuer, client_id)
) WITHOUT ROWID;
"""


class SQLiteTokenStore(LeaseLocking):
    """Grants in a SQLite file (WAL), encrypted, with a lock table for refresh leases.

    Several processes on one host may open the same file. Reads run on the event
    loop thread (a WAL reader never waits for writers; on the rare busy answer the
    read moves to the writer thread), writes run on one dedicated thread, each
    write in a ``BEGIN IMMEDIATE`` transaction.

    ```python
    store = SQLiteTokenStore("tokens.db", cipher=TokenCipher([key]))
    # or: open_store("sqlite:///tokens.db", encryption_keys=[key])
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cipher: TokenCipher,
        retention: float = DEFAULT_RETENTION,
        cleanup_interval: float = 3600.0,
        busy_timeout: float = 10.0,
    ) -> None:
        self._path = os.fspath(path)
        self._cipher = cipher
        self._retention = retention
        self._cleanup_interval = cleanup_interval
        self._next_cleanup = 0.0
        self._signals = ReleaseSignals()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="whop_oauth-sqlite")
        self._writer = self._connect(busy_timeout, writer=True)
        # Busy timeout 0: a busy read is retried on the writer thread, never waited for here.
        self._reader = self._connect(0.0, writer=False)
        self._reader_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SQLiteTokenStore path={self._path!r}>"

    def _connect(self, busy_timeout: float, *, writer: bool) -> sqlite3.Connection:
        try:
            # Owner-only from the start (SQLite gives its -wal/-shm files the same mode).
            os.close(os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600))
            conn = sqlite3.connect(
                self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            if writer:  # WAL mode is stored in the file: set once, by the writer
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # survives a crash of the process
                conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise TokenStoreError(f"cannot open the SQLite token store: {exc}") from None
        return conn

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                return work(self._writer)
            except sqlite3.Error as exc:
                raise TokenStoreError(f"SQLite token store: {type(exc).__name__}") from None

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def get(self, key: TokenKey) -> StoredToken | None:
        try:
            with self._reader_lock:
                row = self._reader.execute(_GET, key.parts).fetchone()
        except sqlite3.OperationalError:  # busy (WAL recovery, checkpoint): wait off the loop
            row = await self._write(lambda conn: conn.execute(_GET, key.parts).fetchone())
        except sqlite3.Error as exc:  # e.g. used after aclose()
            raise TokenStoreError(f"SQLite token store: {type(exc).__name__}") from None
        if row is None:
            return None
        return StoredToken(self._cipher.decrypt(key, row[1]), row[0])

    async def put(
        self, key: TokenKey, token: Token, *, expected_version: int | None = None
    ) -> StoredToken:
        blob = self._cipher.encrypt(key, token)

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            with _immediate(conn):
                current = _version(conn, key)
                if expected_version is not None and current != expected_version:
                    return -1
                version = next_version(current)
                deadline = purge_at(token, self._retention, now)
                row = (*key.parts, version, token.expires_at, now, deadline, blob)
                conn.execute(_PUT, row)
                return version

        version = await self._write(work)
        if version < 0:
            raise StaleWriteError
        if time.time() >= self._next_cleanup:
            await self.cleanup()
        return StoredToken(token, version)

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        def work(conn: sqlite3.Connection) -> int:
            with _immediate(conn):
                current = _version(conn, key)
                if expected_version is not None and current not in (0, expected_version):
                    return -1
                return int(conn.execute(_DELETE, key.parts).rowcount)

        deleted = await self._write(work)
        if deleted < 0:
            raise StaleWriteError
        return deleted > 0

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            now = time.time()
            with _immediate(conn):
                row = conn.execute(_LOCK_EXPIRY, key.parts).fetchone()
                if row is not None and row[0] > now:
                    return False
                conn.execute(_LOCK_TAKE, (*key.parts, holder, now + lease))
                return True

        return await self._write(work)

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        return await self._write(
            lambda conn: _changed(conn, _LOCK_RENEW, (time.time() + lease, *key.parts, holder))
        )

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        return await self._write(lambda conn: _changed(conn, _LOCK_RELEASE, (*key.parts, holder)))

    async def cleanup(self) -> int:
        """Delete grants past their retention and expired lock rows; returns grants deleted."""

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            with _immediate(conn):
                gone = conn.execute("DELETE FROM whop_oauth_grants WHERE purge_at <= ?", (now,))
                conn.execute("DELETE FROM whop_oauth_locks WHERE expires_at <= ?", (now,))
                return gone.rowcount

        self._next_cleanup = time.time() + self._cleanup_interval
        return await self._write(work)

    async def aclose(self) -> None:
        await self._write(lambda conn: conn.close())
        self._executor.shutdown(wait=True)
        with self._reader_lock:
            self._reader.close()


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock first (no upgrade deadlocks)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _version(conn: sqlite3.Connection, key: TokenKey) -> int:
    row = conn.execute(_VERSION, key.parts).fetchone()
    return 0 if row is None else int(row[0])


def _changed(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> bool:
    with _immediate(conn):
        return conn.execute(sql, params).rowcount > 0
