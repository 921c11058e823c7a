"""The embedded default: one SQLite file in WAL mode, shared safely by the processes of a host."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from .._errors import StaleWriteError, TokenStoreError
from .._token import Token, TokenKey, check_key_part
from ._base import DEFAULT_RETENTION, StoredToken, next_version, page_cursor, purge_at
from ._crypto import TokenCipher
from ._lease import LeaseLocking, ReleaseSignals, next_generation
from ._sqlite_file import create_owner_only, open_schema
from ._sqlite_sessions import SQLiteSessions, sweep_sessions

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
logger = logging.getLogger("whop_oauth.stores")

_TENANT_KEYS = (
    "SELECT user, issuer, client_id FROM whop_oauth_grants WHERE tenant = ? "
    "AND (user, issuer, client_id) > (?, ?, ?) ORDER BY user, issuer, client_id LIMIT ?"
)
_LEASE = (
    "SELECT expires_at, generation FROM whop_oauth_leases "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
_LEASE_TAKE = "INSERT OR REPLACE INTO whop_oauth_leases VALUES (?, ?, ?, ?, ?, ?, ?)"
_LEASE_RENEW = (
    "UPDATE whop_oauth_leases SET expires_at = ? "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ? AND holder = ?"
)
# Released rows stay, expired at the release time, so the key's last generation is
# remembered for fencing until cleanup removes rows released a day ago.
_LEASE_RELEASE = (
    "UPDATE whop_oauth_leases SET expires_at = ? "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ? AND holder = ?"
)
_FENCE = (
    "SELECT generation FROM whop_oauth_leases "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
#: Lease rows expired this long are deleted by cleanup (generations stay above the clock).
_LEASE_ROW_RETENTION = 24 * 3600.0


class SQLiteTokenStore(LeaseLocking, SQLiteSessions):
    """Grants in a SQLite file (WAL), encrypted, with a lease table for refresh locks,
    and the session records and spent flows of ``SessionStore``.

    Several processes on one host may open the same file, at any moment, and exit
    at any moment: no descriptor of the database is ever opened or closed outside
    SQLite (closing one would drop the process's POSIX locks and let SQLite delete
    a live WAL). Open the store in each process: a store carried across ``fork()``
    refuses to work. Reads run on the event loop thread (a WAL reader never waits
    for writers; on the rare busy answer the read moves to the writer thread);
    writes run on one dedicated thread, each in a ``BEGIN IMMEDIATE`` transaction.
    Not for network file systems, whose locks SQLite cannot rely on.

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
        self._pid = os.getpid()
        self._closed = False
        try:
            create_owner_only(self._path)
            self._writer = self._connect(busy_timeout)
            open_schema(self._writer, busy_timeout)
            # Busy timeout 0: a busy read is retried on the writer thread, never waited for here.
            self._reader = self._connect(0.0)
        except (sqlite3.Error, OSError) as exc:
            where = os.path.abspath(self._path)
            raise TokenStoreError(f"cannot open the SQLite token store {where}: {exc}") from None
        self._reader_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="whop_oauth-sqlite")
        # A relative path depends on the working directory: a cron job started elsewhere
        # would open another, empty file. Say which file this is.
        self._abspath = os.path.abspath(self._path)
        logger.info("SQLite token store: %s", self._abspath)

    def __repr__(self) -> str:
        return f"<SQLiteTokenStore path={self._path!r}>"

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: survives a crash of the process
        return conn

    def _check_process(self) -> None:
        # SQLite's "How To Corrupt" §2.6: a connection carried across fork() shares
        # locks with its parent's and corrupts the file.
        if os.getpid() != self._pid:
            raise TokenStoreError(
                "this SQLite token store was opened in another process (before a fork): "
                "open the store in each worker process"
            )

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._check_process()
        if self._closed:
            raise TokenStoreError(f"SQLite token store {self._abspath}: the store is closed")

        def run() -> T:
            try:
                return work(self._writer)
            except sqlite3.Error as exc:
                raise TokenStoreError(f"SQLite token store: {type(exc).__name__}") from None

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def get(self, key: TokenKey) -> StoredToken | None:
        self._check_process()
        try:
            with self._reader_lock:
                row = self._reader.execute(_GET, key.parts).fetchone()
        except sqlite3.OperationalError:  # busy (WAL recovery, checkpoint): wait off the loop
            row = await self._write(lambda conn: conn.execute(_GET, key.parts).fetchone())
        except sqlite3.Error as exc:  # e.g. used after aclose()
            raise TokenStoreError(f"SQLite token store: {type(exc).__name__}") from None
        if row is None:
            return None
        version = int(row[0])
        return StoredToken(self._cipher.decrypt(key, row[1], version=version), version)

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            with _immediate(conn):
                current = _version(conn, key)
                if expected_version is not None and current != expected_version:
                    return -1
                if fence is not None and _fenced_out(conn, key, fence):
                    return -2
                version = next_version(current)
                blob = self._cipher.encrypt(key, token, version=version)
                deadline = purge_at(token, self._retention, now)
                conn.execute(_PUT, (*key.parts, version, token.expires_at, now, deadline, blob))
                return version

        version = await self._write(work)
        if version == -2:
            raise StaleWriteError("a newer holder took the refresh lock: this write was fenced")
        if version < 0:
            raise StaleWriteError
        await self._maybe_cleanup()
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

    async def ping(self) -> None:
        """Fail fast (``TokenStoreError`` naming the file and the cause) unless the store
        can take its write lock: for a start-up check, ``await store.ping()``."""

        def check(conn: sqlite3.Connection) -> str | None:
            try:
                conn.execute("BEGIN IMMEDIATE")  # the write lock: a read-only file fails here
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                return f"{type(exc).__name__}: {exc}"
            return None

        problem = await self._write(check)
        if problem is not None:
            raise TokenStoreError(f"SQLite token store {self._abspath}: {problem}")

    async def grant_keys(
        self, tenant: str, *, after: TokenKey | None = None, limit: int | None = None
    ) -> list[TokenKey]:
        """The keys of every grant stored for ``tenant`` (not yet cleaned up), sorted by
        (user, issuer, client id); a page of at most ``limit`` of them after ``after``."""
        check_key_part("tenant", tenant)
        args = (tenant, *page_cursor(after, limit), -1 if limit is None else limit)
        rows = await self._write(lambda conn: conn.execute(_TENANT_KEYS, args).fetchall())
        return [TokenKey(tenant, user, issuer, client_id) for user, issuer, client_id in rows]

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            with _immediate(conn):
                row = conn.execute(_LEASE, key.parts).fetchone()
                if row is not None and row[0] > now:
                    return 0
                generation = next_generation(0 if row is None else int(row[1]))
                conn.execute(_LEASE_TAKE, (*key.parts, holder, now + lease, generation))
                return generation

        return await self._write(work)

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        return await self._write(
            lambda conn: _changed(conn, _LEASE_RENEW, (time.time() + lease, *key.parts, holder))
        )

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        return await self._write(
            lambda conn: _changed(conn, _LEASE_RELEASE, (time.time(), *key.parts, holder))
        )

    async def _maybe_cleanup(self) -> None:
        if time.time() >= self._next_cleanup:
            await self.cleanup()

    async def cleanup(self) -> int:
        """Delete grants past their retention, old lease rows, expired sessions and
        spent flows; returns grants deleted."""

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            with _immediate(conn):
                gone = conn.execute("DELETE FROM whop_oauth_grants WHERE purge_at <= ?", (now,))
                conn.execute(
                    "DELETE FROM whop_oauth_leases WHERE expires_at <= ?",
                    (now - _LEASE_ROW_RETENTION,),
                )
                sweep_sessions(conn, now)
                return gone.rowcount

        self._next_cleanup = time.time() + self._cleanup_interval
        return await self._write(work)

    async def aclose(self) -> None:
        if os.getpid() != self._pid:
            return  # a forked copy: the parent's connections are not ours to close
        if self._closed:
            return
        await self._write(lambda conn: conn.close())
        self._closed = True
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


def _fenced_out(conn: sqlite3.Connection, key: TokenKey, fence: int) -> bool:
    row = conn.execute(_FENCE, key.parts).fetchone()
    return row is not None and int(row[0]) > fence


def _changed(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> bool:
    with _immediate(conn):
        return conn.execute(sql, params).rowcount > 0
