"""``SessionRegistry``: server-side sessions with a short in-process memory.

Every request of a signed-in browser asks "is this session still on?". The answer
is remembered for ``ttl`` seconds (at most 5), so the common case is one dict
lookup; a session ended in this process is forgotten at once, one ended in
another process within ``ttl``. An ended session never comes back (ids are
random), so "not found" is remembered for good.
"""

from __future__ import annotations

import time
from typing import Final

from ._token import TokenKey
from .stores._sessions import SessionRecord, SessionStore, flow_hash, session_hash

__all__ = ["MISS", "Miss", "SessionRegistry"]


class Miss:
    """The type of ``MISS``."""

    def __repr__(self) -> str:
        return "MISS"


#: ``SessionRegistry.peek``'s answer when it has to ask the store.
MISS: Final = Miss()
#: Longest a process trusts its memory of a session: sign-out elsewhere shows within it.
MAX_TTL = 5.0


class SessionRegistry:
    """Create, check and end server-side sessions (one per signed-in browser).

    ``TokenManager.sessions`` is the one an app uses; the Starlette integration
    calls it on sign-in, on every request and on sign-out.

    ```python
    record = await manager.sessions.create(session_id, manager.key(user="user_1"), lifetime=3600)
    assert await manager.sessions.get(session_id) == record
    await manager.end_session(session_id)        # sign-out: every copy of the cookie is dead
    ```
    """

    def __init__(self, store: SessionStore, *, ttl: float = MAX_TTL, size: int = 10_000) -> None:
        self.store = store
        self._ttl = min(max(ttl, 0.0), MAX_TTL)
        self._size = size
        # session id → (record or None for "ended", trusted until this clock reading);
        # insertion order = age.
        self._memory: dict[str, tuple[SessionRecord | None, float]] = {}
        self._clock = time.monotonic  # replaced by tests that step through the window

    def __repr__(self) -> str:
        return f"<SessionRegistry store={self.store!r}>"

    async def create(self, session_id: str, key: TokenKey, *, lifetime: float) -> SessionRecord:
        """Store a new session of ``key``'s user, live for ``lifetime`` seconds."""
        now = time.time()
        record = SessionRecord(key, now, now + lifetime)
        await self.store.create_session(session_hash(session_id), record)
        self._remember(session_id, record)
        return record

    def peek(self, session_id: str) -> SessionRecord | Miss | None:
        """The remembered answer (``None``: ended or expired), or ``MISS`` to ask ``get``."""
        entry = self._memory.get(session_id)
        if entry is None:
            return MISS
        record, until = entry
        if record is None:
            return None
        # One clock reading: ``until`` is the earlier of the window's end and the expiry.
        return record if self._clock() < until else MISS

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live session, read from the store unless remembered (``None`` if ended)."""
        known = self.peek(session_id)
        if not isinstance(known, Miss):
            return known
        record = await self.store.get_session(session_hash(session_id))
        self._remember(session_id, record)
        return record

    async def end(self, session_id: str) -> SessionRecord | None:
        """Delete one session; returns the record it had (``None``: already ended)."""
        id_hash = session_hash(session_id)
        record = await self.store.get_session(id_hash)
        await self.store.delete_session(id_hash)
        self._remember(session_id, None)
        return record

    async def end_all(self, key: TokenKey) -> int:
        """Delete every session of ``key``'s user; returns how many there were."""
        ended = await self.store.delete_sessions_for(key)
        for session_id, (record, _) in list(self._memory.items()):
            if record is not None and record.key == key:
                self._memory[session_id] = (None, 0.0)  # ended, for good
        return ended

    async def count_live(self, key: TokenKey) -> int:
        """How many unexpired sessions ``key``'s user has, in any process."""
        return await self.store.count_live_sessions(key)

    async def claim_flow(self, state: str, *, lifetime: float) -> bool:
        """``True`` the first time a sign-in flow's ``state`` comes back, in any process."""
        return await self.store.claim_flow(flow_hash(state), time.time() + lifetime)

    def _remember(self, session_id: str, record: SessionRecord | None) -> None:
        self._memory.pop(session_id, None)  # re-inserted last: the newest entry
        if record is not None and self._ttl <= 0:
            return
        if len(self._memory) >= self._size:  # bounded: drop the oldest
            del self._memory[next(iter(self._memory))]
        until = 0.0
        if record is not None:
            until = self._clock() + min(self._ttl, record.expires_at - time.time())
        self._memory[session_id] = (record, until)
