"""Server-side session records and spent sign-in flows: the ``SessionStore`` protocol.

A signed session cookie alone cannot be revoked: a copy stays valid until it
expires. So each cookie points to a record kept here, and signing out deletes the
record. The store never sees a session id or a ``state``, only their SHA-256
(``session_hash`` / ``flow_hash``), and a record holds no secret at all: whose
session it is and until when.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._token import TokenKey

__all__ = ["MemorySessions", "SessionRecord", "SessionStore", "flow_hash", "session_hash"]

#: Expired records and spent flows are swept at most this often (memory backend).
_SWEEP_INTERVAL = 60.0


def session_hash(session_id: str) -> str:
    """What a session is stored under: SHA-256 of its id, so a store dump holds no id."""
    return hashlib.sha256(b"whop_oauth.session:" + session_id.encode()).hexdigest()


def flow_hash(state: str) -> str:
    """What a spent sign-in flow is remembered under: SHA-256 of its ``state``."""
    return hashlib.sha256(b"whop_oauth.flow:" + state.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One signed-in browser session, as stored: whose it is and until when (Unix time).

    ``key`` is the grant's ``TokenKey`` (tenant, user, issuer, client): every session
    of a user and tenant shares that one grant.

    >>> record = SessionRecord(TokenKey("biz_1", "user_1", "https://api.whop.com", "app_1"),
    ...                        created_at=0.0, expires_at=1.0)
    >>> record.live(now=0.5), record.live(now=2.0)
    (True, False)
    """

    key: TokenKey
    created_at: float
    expires_at: float

    def live(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at


@runtime_checkable
class SessionStore(Protocol):
    """Session records and spent flows; memory, SQLite and Redis stores implement it.

    Implement it next to ``TokenStore`` to bring your own backend. Every argument
    named ``*_hash`` is a ``session_hash`` / ``flow_hash`` (hex), never the secret.

    - ``create_session`` stores ``record`` under ``id_hash`` until ``record.expires_at``;
      expired records are removed by the backend's cleanup (or TTL).
    - ``get_session`` is ``None`` for an unknown, deleted or expired session.
    - ``delete_session`` says whether a record was there; ``delete_sessions_for``
      removes every session of one grant key and returns how many.
    - ``count_live_sessions`` counts that key's unexpired sessions.
    - ``claim_flow`` is atomic "first caller wins": ``True`` once per ``state_hash``
      until ``expires_at``, ``False`` for every later call, in any process (and for
      a flow whose ``expires_at`` has passed: nothing is left to claim).

    ```python
    await store.create_session(session_hash(sid), SessionRecord(key, now, now + 3600))
    assert await store.count_live_sessions(key) == 1
    assert await store.claim_flow(flow_hash(state), now + 600) is True
    ```
    """

    async def create_session(self, id_hash: str, record: SessionRecord) -> None: ...

    async def get_session(self, id_hash: str) -> SessionRecord | None: ...

    async def delete_session(self, id_hash: str) -> bool: ...

    async def delete_sessions_for(self, key: TokenKey) -> int: ...

    async def count_live_sessions(self, key: TokenKey) -> int: ...

    async def claim_flow(self, state_hash: str, expires_at: float) -> bool: ...


class MemorySessions:
    """``SessionStore`` in dicts, for ``MemoryTokenStore`` (one process only)."""

    def _init_sessions(self) -> None:
        self._session_rows: dict[str, SessionRecord] = {}
        self._sessions_by_key: dict[TokenKey, set[str]] = {}
        self._spent_flows: dict[str, float] = {}
        self._next_sweep = 0.0

    async def create_session(self, id_hash: str, record: SessionRecord) -> None:
        self._sweep_sessions()
        self._session_rows[id_hash] = record
        self._sessions_by_key.setdefault(record.key, set()).add(id_hash)

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        record = self._session_rows.get(id_hash)
        return record if record is not None and record.live() else None

    async def delete_session(self, id_hash: str) -> bool:
        record = self._session_rows.pop(id_hash, None)
        if record is None:
            return False
        self._forget(record.key, id_hash)
        return True

    async def delete_sessions_for(self, key: TokenKey) -> int:
        hashes = self._sessions_by_key.pop(key, set())
        for id_hash in hashes:
            del self._session_rows[id_hash]
        return len(hashes)

    async def count_live_sessions(self, key: TokenKey) -> int:
        now = time.time()
        rows = self._session_rows
        return sum(rows[h].live(now) for h in self._sessions_by_key.get(key, ()))

    async def claim_flow(self, state_hash: str, expires_at: float) -> bool:
        self._sweep_sessions()
        now = time.time()
        if expires_at <= now or self._spent_flows.get(state_hash, 0.0) > now:
            return False
        self._spent_flows[state_hash] = expires_at
        return True

    def _forget(self, key: TokenKey, id_hash: str) -> None:
        hashes = self._sessions_by_key.get(key)
        if hashes is not None:
            hashes.discard(id_hash)
            if not hashes:
                del self._sessions_by_key[key]

    def _sweep_sessions(self, now: float | None = None, *, force: bool = False) -> int:
        """Drop expired sessions and flows past their lifetime; returns sessions dropped."""
        now = time.time() if now is None else now
        if now < self._next_sweep and not force:
            return 0
        self._next_sweep = now + _SWEEP_INTERVAL
        dead = [h for h, record in self._session_rows.items() if not record.live(now)]
        for id_hash in dead:
            self._forget(self._session_rows.pop(id_hash).key, id_hash)
        self._spent_flows = {h: until for h, until in self._spent_flows.items() if until > now}
        return len(dead)
