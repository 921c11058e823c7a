"""``SessionStore`` for ``PostgresTokenStore``: two tables beside the grants (schema 2)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._token import TokenKey
from ._postgres_schema import Statements, key_parts, render
from ._sessions import SessionRecord

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

__all__ = ["PostgresSessions", "SessionStatements"]

T = TypeVar("T")


class SessionStatements:
    """The session and flow statements, rendered once for the store's schema."""

    def __init__(self, schema: str) -> None:
        def q(template: str) -> str:
            return render(template, schema)

        self.create = q(
            "INSERT INTO {s}.sessions (id_hash, tenant, user_id, issuer, client_id, "
            "created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id_hash) DO UPDATE SET tenant = excluded.tenant, "
            "user_id = excluded.user_id, issuer = excluded.issuer, "
            "client_id = excluded.client_id, created_at = excluded.created_at, "
            "expires_at = excluded.expires_at"
        )
        self.get = q(
            "SELECT tenant, user_id, issuer, client_id, created_at, expires_at "
            "FROM {s}.sessions WHERE id_hash = %s AND expires_at > %s"
        )
        self.delete = q("DELETE FROM {s}.sessions WHERE id_hash = %s")
        self.delete_for = q("DELETE FROM {s}.sessions WHERE {key}")
        self.count = q("SELECT count(*) FROM {s}.sessions WHERE {key} AND expires_at > %s")
        # A spent flow whose lifetime is over may be claimed again: its cookie expired too.
        self.claim = q(
            "INSERT INTO {s}.flows AS f (state_hash, expires_at) VALUES (%s, %s) "
            "ON CONFLICT (state_hash) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE f.expires_at <= %s"
        )
        self.sweep = (
            q("DELETE FROM {s}.sessions WHERE expires_at <= %s"),
            q("DELETE FROM {s}.flows WHERE expires_at <= %s"),
        )


class PostgresSessions:
    """The session half of ``PostgresTokenStore``; statements run like the grants'."""

    if TYPE_CHECKING:
        _st: Statements
        _sessions_st: SessionStatements

        async def _run(
            self,
            work: Callable[[psycopg.AsyncConnection[TupleRow]], Awaitable[T]],
            *,
            retry: bool = True,
        ) -> T: ...

        async def _one(
            self, query: str, params: tuple[Any, ...], *, retry: bool = True
        ) -> Any: ...

        async def _count(
            self, query: str, params: tuple[Any, ...], *, retry: bool = True
        ) -> int: ...

        async def _maybe_cleanup(self) -> None: ...

    async def create_session(self, id_hash: str, record: SessionRecord) -> None:
        row = (id_hash, *key_parts(record.key), record.created_at, record.expires_at)
        await self._count(self._sessions_st.create, row)  # an upsert: safe to retry
        await self._maybe_cleanup()

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        row = await self._one(self._sessions_st.get, (id_hash, time.time()))
        if row is None:
            return None
        tenant, user, issuer, client_id, created_at, expires_at = row
        key = TokenKey(tenant, user, issuer, client_id)
        return SessionRecord(key, float(created_at), float(expires_at))

    async def delete_session(self, id_hash: str) -> bool:
        return await self._count(self._sessions_st.delete, (id_hash,)) > 0

    async def delete_sessions_for(self, key: TokenKey) -> int:
        return await self._count(self._sessions_st.delete_for, key_parts(key))

    async def count_live_sessions(self, key: TokenKey) -> int:
        row = await self._one(self._sessions_st.count, (*key_parts(key), time.time()))
        return 0 if row is None else int(row[0])

    async def claim_flow(self, state_hash: str, expires_at: float) -> bool:
        now = time.time()
        if expires_at <= now:
            return False
        # Not retried: a claim whose answer was lost may have landed, and a second try
        # would then read as "already used". Failing is the safe side for a sign-in.
        claim = (state_hash, expires_at, now)
        return await self._count(self._sessions_st.claim, claim, retry=False) > 0

    async def _sweep_sessions(self, conn: psycopg.AsyncConnection[TupleRow], now: float) -> None:
        for statement in self._sessions_st.sweep:
            await conn.execute(statement, (now,))

