"""An in-process store: for tests, scripts and single-worker apps."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._errors import StaleWriteError
from .._token import Token, TokenKey, check_key_part
from ._base import DEFAULT_RETENTION, StoredToken, next_version, page_cursor, purge_at
from ._lease import LeaseLocking, ReleaseSignals, next_generation
from ._sessions import MemorySessions

__all__ = ["MemoryTokenStore"]


@dataclass(frozen=True, slots=True)
class _Row:
    stored: StoredToken
    purge_at: float


def _order(key: TokenKey) -> tuple[str, str, str]:
    return (key.user, key.issuer, key.client_id)


class MemoryTokenStore(LeaseLocking, MemorySessions):
    """Grants and session records in dicts, with the same versions and lease lock as the
    other stores.

    Nothing survives a restart and nothing is shared between processes: use SQLite
    or Redis for anything with more than one worker.

    ```python
    store = MemoryTokenStore()        # or open_store("memory://")
    manager = TokenManager(client, store)
    ```
    """

    def __init__(self, *, retention: float = DEFAULT_RETENTION) -> None:
        self._rows: dict[TokenKey, _Row] = {}
        self._leases: dict[TokenKey, tuple[str, float]] = {}
        self._generations: dict[TokenKey, int] = {}
        self._signals = ReleaseSignals()
        self._retention = retention
        self._next_cleanup = 0.0
        self._last_version = 0
        self._init_sessions()

    def __repr__(self) -> str:
        return f"<MemoryTokenStore grants={len(self._rows)}>"

    async def get(self, key: TokenKey) -> StoredToken | None:
        row = self._rows.get(key)
        return None if row is None else row.stored

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        now = time.time()
        current = self._version(key)
        if expected_version is not None and current != expected_version:
            raise StaleWriteError
        if fence is not None and self._generations.get(key, 0) > fence:
            raise StaleWriteError("a newer holder took the refresh lock: this write was fenced")
        # One counter for the whole store: even within one clock tick, never a reused version.
        self._last_version = max(next_version(current), self._last_version + 1)
        stored = StoredToken(token, self._last_version)
        self._rows[key] = _Row(stored, purge_at(token, self._retention, now))
        if now >= self._next_cleanup:
            self.cleanup(now)
        return stored

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        if key not in self._rows:
            return False
        if expected_version is not None and self._version(key) != expected_version:
            raise StaleWriteError
        del self._rows[key]
        return True

    async def ping(self) -> None:
        """Nothing to reach: always answers (``await store.ping()`` works on every store)."""

    async def grant_keys(
        self, tenant: str, *, after: TokenKey | None = None, limit: int | None = None
    ) -> list[TokenKey]:
        """The keys of every grant stored for ``tenant`` (not yet cleaned up), sorted by
        (user, issuer, client id); a page of at most ``limit`` of them after ``after``."""
        check_key_part("tenant", tenant)
        cursor = page_cursor(after, limit)
        found = [key for key in self._rows if key.tenant == tenant and _order(key) > cursor]
        return sorted(found, key=_order)[:limit]

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        now = time.monotonic()
        current = self._leases.get(key)
        if current is not None and current[1] > now:
            return 0
        self._leases[key] = (holder, now + lease)
        generation = next_generation(self._generations.get(key, 0))
        self._generations[key] = generation
        return generation

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        current = self._leases.get(key)
        if current is None or current[0] != holder:
            return False  # taken over, or released by someone who held it meanwhile
        self._leases[key] = (holder, time.monotonic() + lease)
        return True

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        current = self._leases.get(key)
        if current is None or current[0] != holder:
            return False
        del self._leases[key]
        return True

    def cleanup(self, now: float | None = None) -> int:
        """Remove grants past their retention, expired leases, sessions and spent flows;
        returns grants removed."""
        now = time.time() if now is None else now
        dead = [key for key, row in self._rows.items() if row.purge_at <= now]
        for key in dead:
            del self._rows[key]
        moment = time.monotonic()
        for key in [k for k, (_, until) in self._leases.items() if until <= moment]:
            del self._leases[key]
            self._generations.pop(key, None)  # generations stay above the clock anyway
        self._next_cleanup = now + 3600.0
        self._sweep_sessions(now, force=True)
        return len(dead)

    async def aclose(self) -> None:
        self._rows.clear()
        self._leases.clear()
        self._generations.clear()
        self._init_sessions()

    def _version(self, key: TokenKey) -> int:
        row = self._rows.get(key)
        return 0 if row is None else row.stored.version
