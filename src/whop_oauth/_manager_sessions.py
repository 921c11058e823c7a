"""Sign-out for ``TokenManager``: sessions end, and the grant goes with the last one.

Rules (README, "Sessions and sign-out"): one grant per (tenant, user), shared by
that user's sessions and background jobs. Ending a session revokes the grant only
when no other live session of the user and tenant remains, unless the manager
keeps grants for background work; "sign out everywhere" ends every session and
revokes the grant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import ConfigurationError, DecryptionError, StaleWriteError
from ._hooks import RefreshHooks, call_hook
from ._token import DEFAULT_TENANT, TokenKey

if TYPE_CHECKING:
    from ._revocations import Revocations
    from ._session_registry import SessionRegistry
    from .stores._base import TokenStore

__all__ = ["SessionGrants"]


class SessionGrants:
    """The session half of ``TokenManager`` (a mixin: it uses the manager's store)."""

    if TYPE_CHECKING:
        store: TokenStore
        keep_grants_for_background: bool
        _sessions: SessionRegistry | None
        _revocations: Revocations
        _hooks: RefreshHooks

        def key(self, *, user: str, tenant: str = DEFAULT_TENANT) -> TokenKey: ...

        def _forget(self, key: TokenKey) -> None: ...

        async def sign_out(self, *, user: str, tenant: str = DEFAULT_TENANT) -> bool: ...

    @property
    def sessions(self) -> SessionRegistry:
        """The server-side sessions (raises ``ConfigurationError`` without a session store)."""
        if self._sessions is None:
            raise ConfigurationError(
                "this token store keeps no sessions: pass session_store= (any built-in "
                "store) to TokenManager"
            )
        return self._sessions

    async def end_session(self, session_id: str) -> bool:
        """Sign one browser session out, in every process (``sessions``' cache window).

        When it was the last live session of its user and tenant, the grant is revoked
        at the provider and deleted too, unless ``keep_grants_for_background``.
        Returns whether the session was live.
        """
        record = await self.sessions.end(session_id)
        if record is None:
            return False
        if not self.keep_grants_for_background:
            await self._release_if_unused(record.key)
        return True

    async def sign_out_everywhere(self, *, user: str, tenant: str = DEFAULT_TENANT) -> int:
        """End every session of the user and tenant, then revoke and delete the grant.

        Returns how many sessions were ended.

        ```python
        await manager.sign_out_everywhere(user="user_1", tenant="biz_1")
        ```
        """
        ended = await self.sessions.end_all(self.key(user=user, tenant=tenant))
        await self.sign_out(user=user, tenant=tenant)
        return ended

    async def revoke_pending(self) -> int:
        """Retry the revocations that failed earlier; returns how many still wait.

        Call it from a periodic job or at shutdown; every successful revocation (a later
        sign-in replacing a grant, a sign-out) retries them too.
        """
        return await self._revocations.retry()

    async def _release_if_unused(self, key: TokenKey) -> None:
        # Counted, then deleted only if still the version read: a sign-in that created a
        # session and stored a new grant meanwhile makes the delete stale, and we look again.
        for _ in range(3):
            if await self.sessions.count_live(key) > 0:
                return
            try:
                stored = await self.store.get(key)
            except DecryptionError:
                await self.store.delete(key)
                return
            if stored is None:
                return
            self._forget(key)
            try:
                deleted = await self.store.delete(key, expected_version=stored.version)
            except StaleWriteError:
                continue
            if deleted:
                await call_hook(self._hooks.on_grant_deleted, key, "sign_out")
                await self._revocations.revoke(stored.token, reason="signed-out")
            return

