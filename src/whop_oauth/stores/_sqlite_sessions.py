"""``SessionStore`` for ``SQLiteTokenStore``: two tables beside the grants (schema 3)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import TokenStoreError
from .._token import TokenKey
from ._sessions import SessionRecord

__all__ = ["SQLiteSessions", "sweep_sessions"]

T = TypeVar("T")

_CREATE = "INSERT OR REPLACE INTO whop_oauth_sessions VALUES (?, ?, ?, ?, ?, ?, ?)"
_GET = (
    "SELECT tenant, user, issuer, client_id, created_at, expires_at "
    "FROM whop_oauth_sessions WHERE id_hash = ? AND expires_at > ?"
)
_DELETE = "DELETE FROM whop_oauth_sessions WHERE id_hash = ?"
_DELETE_FOR = (
    "DELETE FROM whop_oauth_sessions "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ?"
)
_COUNT = (
    "SELECT COUNT(*) FROM whop_oauth_sessions "
    "WHERE tenant = ? AND user = ? AND issuer = ? AND client_id = ? AND expires_at > ?"
)
# A spent flow whose lifetime is over may be claimed again: its cookie has expired anyway.
_CLAIM = (
    "INSERT INTO whop_oauth_flows VALUES (?, ?) "
    "ON CONFLICT (state_hash) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE whop_oauth_flows.expires_at <= ?"
)


def sweep_sessions(conn: sqlite3.Connection, now: float) -> None:
    """Delete expired sessions and spent flows past their lifetime (inside a transaction)."""
    conn.execute("DELETE FROM whop_oauth_sessions WHERE expires_at <= ?", (now,))
    conn.execute("DELETE FROM whop_oauth_flows WHERE expires_at <= ?", (now,))


class SQLiteSessions:
    """The session half of ``SQLiteTokenStore``: writes on its writer thread, reads
    on the event loop like grants."""

    if TYPE_CHECKING:
        _reader: sqlite3.Connection
        _reader_lock: threading.Lock

        def _check_process(self) -> None: ...

        async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _maybe_cleanup(self) -> None: ...

    async def create_session(self, id_hash: str, record: SessionRecord) -> None:
        row = (id_hash, *record.key.parts, record.created_at, record.expires_at)
        await self._write(lambda conn: _changed(conn, _CREATE, row))
        await self._maybe_cleanup()

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        row = await self._read_one(_GET, (id_hash, time.time()))
        if row is None:
            return None
        tenant, user, issuer, client_id, created_at, expires_at = row
        key = TokenKey(tenant, user, issuer, client_id)
        return SessionRecord(key, float(created_at), float(expires_at))

    async def delete_session(self, id_hash: str) -> bool:
        return await self._write(lambda conn: _changed(conn, _DELETE, (id_hash,)))

    async def delete_sessions_for(self, key: TokenKey) -> int:
        return await self._write(lambda conn: _count_changed(conn, _DELETE_FOR, key.parts))

    async def count_live_sessions(self, key: TokenKey) -> int:
        row = await self._read_one(_COUNT, (*key.parts, time.time()))
        return 0 if row is None else int(row[0])

    async def claim_flow(self, state_hash: str, expires_at: float) -> bool:
        params = (state_hash, expires_at, time.time())
        if expires_at <= params[2]:
            return False
        return await self._write(lambda conn: _changed(conn, _CLAIM, params))

    async def _read_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        self._check_process()
        try:
            with self._reader_lock:
                return self._reader.execute(sql, params).fetchone()
        except sqlite3.OperationalError:  # busy: wait on the writer thread, off the loop
            return await self._write(lambda conn: conn.execute(sql, params).fetchone())
        except sqlite3.Error as exc:
            raise TokenStoreError(f"SQLite token store: {type(exc).__name__}") from None


def _count_changed(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        changed = int(conn.execute(sql, params).rowcount)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return changed


def _changed(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> bool:
    return _count_changed(conn, sql, params) > 0
