"""PostgreSQL: grants next to the application's own data, shared by every worker and machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .._errors import ConfigurationError, InvalidTokenKey, StaleWriteError, TokenStoreError
from .._token import Token, TokenKey, check_key_part
from ._base import DEFAULT_RETENTION, StoredToken, next_version, page_cursor, purge_at
from ._crypto import TokenCipher
from ._lease import LeaseLocking, ReleaseSignals
from ._postgres_errors import connection_lost, describe
from ._postgres_schema import Statements, check_schema_name, create_schema, key_parts
from ._postgres_sessions import PostgresSessions, SessionStatements

__all__ = ["PostgresTokenStore"]

T = TypeVar("T")
Conn = psycopg.AsyncConnection[TupleRow]

_FENCED = "a newer holder took the refresh lock: this write was fenced"
#: An unconditional put re-reads and retries this often when writers race.
_UNCONDITIONAL_TRIES = 8


class PostgresTokenStore(LeaseLocking, PostgresSessions):
    """Grants in PostgreSQL (encrypted), leases as rows with generations, and the session
    records and spent flows of ``SessionStore``, in a schema of their own (``whop_oauth``
    unless ``schema=`` says otherwise), created on first use.

    Every step is one atomic statement (versioned conditional writes, fenced by the
    key's newest lease generation), so a connection lost mid-step writes nothing
    half. Such a step is retried on a fresh connection until ``timeout`` seconds
    have passed (a server restart), then fails as ``TokenStoreError`` naming the
    server and the cause, never the password. Leases are rows judged by the
    server's clock; they outlive a dropped connection, so a holder cut off from the
    server while it refreshes keeps its lock (an advisory lock would not: see the
    README). ``max_connections`` bounds this process's pool.

    ```python
    store = PostgresTokenStore("postgresql://app:pw@db:5432/app", cipher=TokenCipher([key]))
    # or: open_store("postgresql://app:pw@db:5432/app", encryption_keys=[key])
    ```
    """

    def __init__(
        self,
        url: str,
        *,
        cipher: TokenCipher,
        schema: str = "whop_oauth",
        retention: float = DEFAULT_RETENTION,
        cleanup_interval: float = 3600.0,
        max_connections: int = 10,
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(max_connections, int) or max_connections < 1 or timeout <= 0:
            raise ConfigurationError("max_connections must be >= 1 and timeout > 0 seconds")
        try:
            info = conninfo_to_dict(url)
        except psycopg.Error:
            raise ConfigurationError("the PostgreSQL URL is malformed") from None
        host, port = str(info.get("host") or "localhost"), str(info.get("port") or "5432")
        self._where = host if host.startswith("/") else f"{host}:{port}"
        self._password = str(info["password"]) if info.get("password") else None
        self._url = url
        self._connect_options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in info:
            self._connect_options["connect_timeout"] = max(2, round(timeout))
        if "application_name" not in info:
            self._connect_options["application_name"] = "whop_oauth"
        self._st = Statements(check_schema_name(schema))
        self._sessions_st = SessionStatements(schema)
        self._cipher = cipher
        self._retention = retention
        self._cleanup_interval = cleanup_interval
        self._next_cleanup = 0.0
        self._max_connections = max_connections
        self._timeout = timeout
        self._signals = ReleaseSignals()
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._pid = 0
        self._opening = asyncio.Lock()
        self._closed = False
        # One connection of its own for reads, used while free: a pool checkout costs
        # more than the query itself (measured on loopback: ~230 µs vs ~160 µs).
        self._reader: Conn | None = None
        self._reader_busy = False
        self._reader_retry_at = 0.0

    def __repr__(self) -> str:
        return f"<PostgresTokenStore {self._where} schema={self._st.schema!r}>"

    # -- running statements ----------------------------------------------------------

    def _error(self, cause: str) -> TokenStoreError:
        return TokenStoreError(f"PostgreSQL token store at {self._where}: {cause}")

    async def _ready(self) -> AsyncConnectionPool[Conn]:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        async with self._opening:
            if self._closed:
                raise self._error("the store is closed")
            if self._pool is not None and self._pid != os.getpid():
                # Connections carried across fork() share sockets with the parent's.
                raise self._error("opened in another process (before a fork): open it in each")
            if self._pool is None:
                conn = await psycopg.AsyncConnection.connect(self._url, **self._connect_options)
                try:
                    await create_schema(conn, self._st)
                finally:
                    await conn.close()
                pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                    self._url,
                    kwargs=self._connect_options,
                    min_size=1,
                    max_size=self._max_connections,
                    open=False,
                    name="whop_oauth",
                    timeout=self._timeout,
                )
                await pool.open(wait=False)
                self._pool, self._pid = pool, os.getpid()
                await self._open_reader()  # opened and closed with the pool
        return self._pool

    async def _run(self, work: Callable[[Conn], Awaitable[T]], *, retry: bool = True) -> T:
        """``work`` on a pooled connection; retried (when ``retry``) while the connection
        or the server is lost, until ``timeout``; every failure a ``TokenStoreError``."""
        deadline = time.monotonic() + self._timeout
        pause = 0.02
        while True:
            remaining = deadline - time.monotonic()
            working = False
            try:
                async with asyncio.timeout(remaining):
                    pool = await self._ready()
                    async with pool.connection(timeout=remaining) as conn:
                        working = True
                        return await work(conn)
            except PoolTimeout:
                raise self._pool_timeout() from None
            except TimeoutError:
                if not working:
                    raise self._pool_timeout() from None
                raise self._error(f"no answer within {self._timeout:g} s") from None
            except psycopg.Error as exc:
                if not (retry and connection_lost(exc)) or time.monotonic() + pause >= deadline:
                    raise self._error(describe(exc, self._password)) from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _pool_timeout(self) -> TokenStoreError:
        stats = self._pool.get_stats() if self._pool is not None else {}
        if stats.get("pool_size", 0) >= self._max_connections:
            return self._error(
                f"all {self._max_connections} connections stayed busy for {self._timeout:g} s "
                "(raise max_connections, or the server's limit)"
            )
        return self._error(f"no connection to the server within {self._timeout:g} s")

    async def _one(self, query: str, params: tuple[Any, ...], *, retry: bool = True) -> Any:
        async def work(conn: Conn) -> TupleRow | None:
            # Binary results: a blob travels as itself, not as twice as much hex.
            return await (await conn.execute(query, params, binary=True)).fetchone()

        return await self._run(work, retry=retry)

    async def _count(self, query: str, params: tuple[Any, ...], *, retry: bool = True) -> int:
        async def work(conn: Conn) -> int:
            return (await conn.execute(query, params)).rowcount

        return await self._run(work, retry=retry)

    # -- grants ----------------------------------------------------------------------

    async def _read_one(self, query: str, params: tuple[Any, ...]) -> Any:
        """A read on the store's own connection when it is free, else on the pool; any
        trouble drops that connection and the read goes the pool's (retried) way."""
        conn = self._reader
        if conn is None or self._reader_busy or conn.closed or self._pid != os.getpid():
            row = await self._one(query, params)
            if conn is None and not self._reader_busy and self._pool is not None:
                await self._open_reader()  # a lost reader: again, at most every 30 s
            return row
        self._reader_busy = True
        try:
            async with asyncio.timeout(self._timeout):
                return await (await conn.execute(query, params, binary=True)).fetchone()
        except (psycopg.Error, TimeoutError):
            self._reader = None
            await _close_quietly(conn)
            return await self._one(query, params)
        finally:
            self._reader_busy = False

    async def _open_reader(self) -> None:
        """Connect the read connection; on failure the pool serves reads for 30 s."""
        if time.monotonic() < self._reader_retry_at or self._closed:
            return
        self._reader_busy = True
        self._reader_retry_at = time.monotonic() + 30.0
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, **self._connect_options)
        except (psycopg.Error, OSError):
            return
        finally:
            self._reader_busy = False
        if self._closed or self._pid != os.getpid():
            await _close_quietly(conn)  # closed meanwhile: never left open
        else:
            self._reader = conn

    async def get(self, key: TokenKey) -> StoredToken | None:
        row = await self._read_one(self._st.get, key_parts(key))
        if row is None:
            return None
        version = int(row[0])
        return StoredToken(self._cipher.decrypt(key, bytes(row[1]), version=version), version)

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        parts = key_parts(key)
        for _ in range(_UNCONDITIONAL_TRIES):
            if expected_version is None:
                row = await self._one(self._st.version, parts)
                base = 0 if row is None else int(row[0])
            else:
                base = expected_version
            now = time.time()
            version = next_version(base, now)
            blob = self._cipher.encrypt(key, token, version=version)
            values = (version, blob, token.expires_at, now, purge_at(token, self._retention, now))
            params: tuple[Any, ...]
            if base == 0:
                query, params = self._st.insert, (*parts, *parts, *values, fence)
            else:
                query, params = self._st.update, (*parts, *values, *parts, base, fence)
            # Retried after a lost answer: the version guard makes a second landing impossible.
            written, newest = await self._one(query, params)
            if written:
                await self._maybe_cleanup()
                return StoredToken(token, version)
            if fence is not None and newest is not None and int(newest) > fence:
                raise StaleWriteError(_FENCED)
            if expected_version is not None:
                raise StaleWriteError
        raise StaleWriteError("the grant kept changing while it was written")

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        parts = key_parts(key)
        if expected_version is None:
            return await self._one(self._st.delete, parts) is not None
        if await self._one(self._st.delete_if, (*parts, expected_version)) is not None:
            return True
        if await self._one(self._st.version, parts) is not None:
            raise StaleWriteError
        return False

    async def ping(self) -> None:
        """Fail fast (``TokenStoreError`` with host:port and the cause, never the password)
        unless the server answers and the schema is ready: ``await store.ping()``."""

        async def work(conn: Conn) -> None:
            await conn.execute("SELECT 1")

        await self._run(work, retry=False)

    async def grant_keys(
        self, tenant: str, *, after: TokenKey | None = None, limit: int | None = None
    ) -> list[TokenKey]:
        """The keys of every grant stored for ``tenant`` (not yet cleaned up), sorted by
        (user, issuer, client id); a page of at most ``limit`` of them after ``after``."""
        check_key_part("tenant", tenant)
        args = (tenant, *page_cursor(after, limit), limit)  # LIMIT NULL: no limit

        async def work(conn: Conn) -> list[TupleRow]:
            return await (await conn.execute(self._st.tenant_keys, args)).fetchall()

        if "\x00" in tenant:
            raise InvalidTokenKey("a tenant is a non-empty string without NUL characters")
        rows = await self._run(work)
        return [TokenKey(tenant, user, issuer, client_id) for user, issuer, client_id in rows]

    # -- leases ----------------------------------------------------------------------

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        parts = key_parts(key)
        row = await self._one(self._st.acquire, (*parts, holder, *parts, holder, float(lease)))
        return 0 if row is None else int(row[0])

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        return await self._count(self._st.renew, (float(lease), *key_parts(key), holder)) > 0

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        return await self._count(self._st.release, (*key_parts(key), holder)) > 0

    # -- upkeep ----------------------------------------------------------------------

    async def _maybe_cleanup(self) -> None:
        if time.time() >= self._next_cleanup:
            await self.cleanup()

    async def cleanup(self) -> int:
        """Delete grants past their retention, lease rows a day old, expired sessions and
        spent flows; returns grants deleted."""
        self._next_cleanup = time.time() + self._cleanup_interval

        async def work(conn: Conn) -> int:
            now = time.time()
            gone = (await conn.execute(self._st.purge_grants, (now,))).rowcount
            await conn.execute(self._st.purge_leases)
            await self._sweep_sessions(conn, now)
            return gone

        return await self._run(work)

    async def aclose(self) -> None:
        async with self._opening:
            self._closed = True
            pool, self._pool = self._pool, None
            reader, self._reader = self._reader, None
        if reader is not None and self._pid == os.getpid():
            await _close_quietly(reader)
        if pool is not None and self._pid == os.getpid():
            await pool.close()


async def _close_quietly(conn: Conn) -> None:
    with contextlib.suppress(psycopg.Error):  # already broken: nothing to hand back
        await conn.close()
