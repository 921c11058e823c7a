"""``TokenManager``: a valid access token for any (tenant, user), refreshed once at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache, partial
from typing import Literal, Protocol

from ._errors import (
    ConfigurationError,
    DecryptionError,
    IdTokenError,
    InvalidGrantError,
    LockLost,
    LockTimeout,
    NoGrantError,
    RateLimitedError,
    SignInRequired,
    StaleWriteError,
    TokenStoreError,
    WhopOAuthError,
)
from ._hooks import DeletionReason, RefreshHooks, RefreshInfo, call_hook, report_failure
from ._manager_sessions import SessionGrants
from ._manager_users import UserListing
from ._metadata import ProviderMetadata
from ._origins import Origin, parse_origin
from ._revocations import Revocations
from ._session_registry import SessionRegistry
from ._token import DEFAULT_TENANT, Token, TokenKey
from ._user_auth import UserTokenAuth
from .stores._base import StoredToken, TokenStore
from .stores._lease import Lease
from .stores._sessions import SessionStore

__all__ = ["RefreshingClient", "TokenManager"]

logger = logging.getLogger("whop_oauth.manager")

#: A token is refreshed once less than this share of its granted lifetime is left
#: (or ``leeway``, whichever is shorter), so a short-lived token is not always "due".
_MARGIN_SHARE = 0.25
#: How many users' ``UserTokenAuth`` objects ``auth()`` keeps to hand out again.
AUTHS_KEPT = 4096


class RefreshingClient(Protocol):
    """What the manager needs from an OAuth client (``OAuthClient`` provides it)."""

    @property
    def issuer(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def metadata(self) -> ProviderMetadata:
        """The provider's metadata; ``ConfigurationError`` while discovery has not run."""
        ...

    @property
    def deadline(self) -> float:
        """The longest one call to the provider can take, retries and waits included."""
        ...

    def token_key(self, user: str, tenant: str = DEFAULT_TENANT) -> TokenKey: ...

    async def refresh(
        self, token: Token, *, before_send: Callable[[], Awaitable[None]] | None = None
    ) -> Token: ...

    async def revoke(self, token: Token) -> object: ...


class TokenManager(SessionGrants, UserListing):
    """Hands out valid access tokens; refreshes each grant at most once at a time.

    Keep one per app for the life of the process. Within the process, concurrent
    callers for one key share a single refresh; across processes and machines the
    store's lease lock serialises refreshes. Whoever gets the lock reads the store
    again and refreshes only if the grant is still the version it decided to
    refresh; it renews its lease right before sending and sends only if the lease
    outlasts the request's deadline; its write is fenced. So a refresh token is
    presented once (README, "How a refresh happens", says what is not covered).

    A token is refreshed when less than ``leeway`` seconds, or a quarter of its
    granted lifetime if that is shorter, are left.

    One grant per (tenant, user), shared by that user's sessions and background
    jobs: ``save`` revokes the grant it replaces, and ``end_session`` (sign-out)
    revokes the grant when the user's last live session ends, unless
    ``keep_grants_for_background=True``. Sessions live in ``session_store``
    (default: the token store, when it is a ``SessionStore`` as every built-in is).

    ```python
    manager = TokenManager(client, open_store("sqlite:///tokens.db", encryption_keys=[key]))
    await manager.save(token, user="user_1", tenant="biz_1")       # after sign-in
    access = await manager.access_token(user="user_1", tenant="biz_1")
    async with httpx.AsyncClient(auth=manager.auth(user="user_1", tenant="biz_1")) as http:
        await http.get("https://api.whop.com/api/v1/me")
    ```
    """

    def __init__(
        self,
        client: RefreshingClient,
        store: TokenStore,
        *,
        leeway: float = 60.0,
        lock_lease: float = 30.0,
        lock_timeout: float = 60.0,
        hooks: RefreshHooks | None = None,
        undecryptable: Literal["raise", "delete"] = "raise",
        failure_backoff: float = 5.0,
        cache_ttl: float = 5.0,
        keep_grants_for_background: bool = False,
        session_store: SessionStore | None = None,
    ) -> None:
        durations = (leeway, lock_timeout, failure_backoff, cache_ttl)
        if lock_lease <= 0 or min(durations) < 0:
            raise ConfigurationError("lock_lease must be > 0; the other durations >= 0")
        # A refresh request must end inside the lease that guards it.
        self._request_budget = float(client.deadline)
        if lock_lease <= self._request_budget:
            raise ConfigurationError(
                f"lock_lease ({lock_lease:g} s) must be longer than the client's deadline "
                f"({self._request_budget:g} s): a refresh must end within the lease guarding it"
            )
        if undecryptable not in ("raise", "delete"):
            raise ConfigurationError("undecryptable must be 'raise' or 'delete'")
        self.client = client
        self.store = store
        self._leeway = leeway
        self._lease = lock_lease
        self._lock_timeout = lock_timeout
        self._hooks = hooks or RefreshHooks()
        self._undecryptable = undecryptable
        self._backoff = failure_backoff
        self._inflight: dict[TokenKey, asyncio.Task[Token]] = {}
        self._quiet_until: dict[TokenKey, float] = {}
        # Valid tokens read in the last ``cache_ttl`` seconds: the hot path of every API
        # call skips the store. Refreshes always re-read the store, never this. Keyed
        # by (tenant, user), the parts that vary (issuer and client are the manager's),
        # so a hit builds no TokenKey; each entry keeps the monotonic time it stops
        # being servable: the end of the ttl or the token falling due, the sooner.
        self._cache_ttl = cache_ttl
        self._cache: dict[tuple[str, str], tuple[Token, float]] = {}
        self.keep_grants_for_background = keep_grants_for_background
        sessions = store if session_store is None else session_store
        self._sessions = (
            SessionRegistry(sessions, ttl=cache_ttl) if isinstance(sessions, SessionStore) else None
        )
        self._revocations = Revocations(client, budget=min(self._request_budget, 5.0))
        # The provider's origins, worked out once per metadata document (provider_origins).
        self._origins: tuple[ProviderMetadata, frozenset[Origin]] | None = None
        # auth()'s objects, by (tenant, user): one per user serves all their requests.
        self._shared_auth = lru_cache(maxsize=AUTHS_KEPT)(partial(UserTokenAuth, self))

    def __repr__(self) -> str:
        return f"<TokenManager client_id={self.client.client_id!r} store={self.store!r}>"

    def key(self, *, user: str, tenant: str = DEFAULT_TENANT) -> TokenKey:
        """The ``TokenKey`` a user's grant is stored, locked and encrypted under."""
        return self.client.token_key(user, tenant)

    async def save(self, token: Token, *, user: str, tenant: str = DEFAULT_TENANT) -> None:
        """Store a grant after sign-in; the grant it replaces is revoked at the provider.

        The new grant is stored first (under the refresh lock, so no refresh of the old
        one is lost in between); a failed revocation is logged and retried later, and
        never fails the sign-in.
        """
        key = self.key(user=user, tenant=tenant)
        async with self.store.lock(key, lease=self._lease, timeout=self._lock_timeout) as lease:
            try:
                replaced = await self.store.get(key)
            except DecryptionError:
                replaced = None  # unreadable: nothing to revoke with; overwritten below
            await self.store.put(key, token, fence=lease.generation)
        self._forget(key)
        if replaced is not None and replaced.token.refresh_token != token.refresh_token:
            await self._revocations.revoke(replaced.token, reason="replaced")

    async def get_token(self, *, user: str, tenant: str = DEFAULT_TENANT) -> Token:
        """A token valid for at least ``leeway`` seconds, refreshed if needed.

        Raises ``NoGrantError`` when nothing is stored and ``InvalidGrantError`` when
        the provider refused the refresh token (both ``SignInRequired``).
        """
        try:
            entry = self._cache.get((tenant, user))
        except TypeError:  # unhashable, so no key part: self.key() refuses it, typed
            entry = None
        if entry is not None and time.monotonic() < entry[1]:
            return entry[0]  # every request's case: no coroutine, no store
        key = self.key(user=user, tenant=tenant)
        stored = await self._read(key)
        if stored is None:
            raise NoGrantError("no token is stored for this user: sign in first")
        token = stored.token
        if not self._due(token):
            self._remember(key, token)
            return token
        if not token.is_expired() and time.monotonic() < self._quiet_until.get(key, 0.0):
            return token  # a refresh just failed; the old token still works meanwhile
        return await self._single_flight(key, seen=stored.version, rejected=None)

    async def access_token(self, *, user: str, tenant: str = DEFAULT_TENANT) -> str:
        """``get_token(...).access_token``: the string for an ``Authorization`` header."""
        return (await self.get_token(user=user, tenant=tenant)).access_token

    async def refresh(
        self,
        *,
        user: str,
        tenant: str = DEFAULT_TENANT,
        rejected_access_token: str | None = None,
    ) -> Token:
        """Replace the access token now, e.g. after the API answered 401 to it.

        If the stored access token already differs from ``rejected_access_token``,
        someone refreshed meanwhile and that token is returned without a second
        refresh. Without it, the token stored right now is the one replaced.
        """
        key = self.key(user=user, tenant=tenant)
        self._forget(key)
        stored = await self._read(key)
        if stored is None:
            raise NoGrantError("no token is stored for this user: sign in first")
        rejected = rejected_access_token or stored.token.access_token
        if stored.token.access_token != rejected and not self._due(stored.token):
            return stored.token  # already replaced by someone else: no second refresh
        return await self._single_flight(key, seen=stored.version, rejected=rejected)

    async def sign_out(self, *, user: str, tenant: str = DEFAULT_TENANT) -> bool:
        """Revoke the grant at the provider and delete it here, whatever the provider says.

        Returns whether a grant was stored.
        """
        key = self.key(user=user, tenant=tenant)
        self._forget(key)
        try:
            stored = await self._read(key)
        except DecryptionError:
            stored = None  # nothing to revoke with; the row goes anyway
        try:
            if stored is not None:
                await self._revocations.revoke(stored.token, reason="signed-out")
        finally:
            # Only the grant revoked above: a sign-in landing meanwhile (another device)
            # stored a newer one, which is neither revoked nor deleted here.
            try:
                expected = None if stored is None else stored.version
                deleted = await self.store.delete(key, expected_version=expected)
            except StaleWriteError:
                deleted = False
        if deleted:
            await call_hook(self._hooks.on_grant_deleted, key, "sign_out")
        return deleted

    def auth(
        self, *, user: str, tenant: str = DEFAULT_TENANT, allowed_origins: Sequence[str] = ()
    ) -> UserTokenAuth:
        """An ``httpx.Auth`` that sends this user's token (see ``UserTokenAuth``).

        It holds no state of its own between requests, so without ``allowed_origins``
        one is made per (tenant, user) and handed out again (the least recently used
        of ``AUTHS_KEPT`` is dropped first): a request path asks for it on every call.
        """
        if allowed_origins or isinstance(allowed_origins, str):  # "" is refused there, typed
            return UserTokenAuth(self, user=user, tenant=tenant, allowed_origins=allowed_origins)
        try:
            return self._shared_auth(user=user, tenant=tenant)
        except TypeError:  # unhashable: not remembered; get_token() refuses it, typed
            return UserTokenAuth(self, user=user, tenant=tenant)

    def provider_origins(self) -> frozenset[Origin]:
        """The origins of the issuer, the API base and userinfo: where user tokens may go.

        Parsed once per metadata document; with discovery, the issuer's alone until
        the metadata is loaded (``await client.load_metadata()``).
        """
        try:
            metadata = self.client.metadata
        except ConfigurationError:  # not discovered yet: ask again next time
            return frozenset({parse_origin(self.client.issuer)})
        if self._origins is None or self._origins[0] is not metadata:
            # The API base, and userinfo, which may live on another host than the issuer
            # (Google's does): the metadata names them, so the token may go there.
            urls = (self.client.issuer, metadata.api_base_url, metadata.userinfo_endpoint)
            origins = frozenset(parse_origin(url) for url in urls if url is not None)
            self._origins = (metadata, origins)
        return self._origins[1]

    # -- single flight -------------------------------------------------------------

    async def _single_flight(self, key: TokenKey, *, seen: int, rejected: str | None) -> Token:
        task = self._inflight.get(key)
        if task is not None:
            token = await asyncio.shield(task)
            if self._servable(token, rejected):
                return token
            # That refresh began before our 401 and kept the rejected token: one more.
            task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh_flow(key, seen, rejected))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a cancelled caller must not abort a refresh whose rotated refresh
        # token still has to be stored.
        return await asyncio.shield(task)

    def _finished(self, key: TokenKey, task: asyncio.Task[Token]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved, so a refresh nobody waits for does not warn

    def _margin(self, token: Token) -> float:
        lifetime = token.lifetime
        return self._leeway if lifetime is None else min(self._leeway, lifetime * _MARGIN_SHARE)

    def _due(self, token: Token) -> bool:
        return token.is_expired(self._margin(token))

    @staticmethod
    def _servable(token: Token, rejected: str | None) -> bool:
        return not token.is_expired() and token.access_token != rejected

    async def _refresh_flow(self, key: TokenKey, seen: int, rejected: str | None) -> Token:
        give_up = time.monotonic() + self._lock_timeout
        while True:
            wait = max(0.0, give_up - time.monotonic())
            try:
                async with self.store.lock(key, lease=self._lease, timeout=wait) as lease:
                    return await self._refresh_locked(key, seen, rejected, lease)
            except LockLost as error:
                # Nothing was sent. Whoever took the lock over may have refreshed.
                stored = await self._read(key)
                if stored is None:
                    raise NoGrantError("the grant was deleted during the refresh") from None
                if stored.version != seen and self._servable(stored.token, rejected):
                    return stored.token
                if time.monotonic() >= give_up:
                    await report_failure(self._hooks, key, error)
                    raise
                seen = stored.version  # still ours to refresh: take the lock again
            except LockTimeout as error:
                # Whoever held the lock may have refreshed; otherwise serve what still works.
                stored = await self._read(key)
                if stored is not None and self._servable(stored.token, rejected):
                    return stored.token
                await report_failure(self._hooks, key, error)
                raise

    async def _refresh_locked(
        self, key: TokenKey, seen: int, rejected: str | None, lease: Lease
    ) -> Token:
        stored = await self._read(key)  # again: another worker may have refreshed already
        if stored is None:
            raise NoGrantError("no token is stored for this user: sign in first")
        if stored.version != seen and self._servable(stored.token, rejected):
            return stored.token  # the grant changed since we decided to refresh: use it
        if not stored.token.refresh_token:
            if self._servable(stored.token, rejected):
                return stored.token
            await self._delete(key, stored, "no_refresh_token")
            raise SignInRequired("the access token expired and there is no refresh token")
        started = time.monotonic()
        # Checked right before the refresh token leaves: renewed then, and sent only if
        # the lease outlasts the request's whole deadline. Renewals go on until the
        # answer is stored (the request, then the write's retries, each within the
        # deadline): a dropped rotation is a lost grant.
        check_lease = partial(lease.reserve, self._request_budget, hold=2 * self._request_budget)
        try:
            fresh = await self.client.refresh(stored.token, before_send=check_lease)
        except LockLost:
            raise  # nothing was sent: _refresh_flow re-reads and tries again
        except InvalidGrantError as error:
            return await self._invalid_grant(key, stored, error)
        except IdTokenError as error:
            if error.rotated is None:
                return await self._failed(key, stored, rejected, error)
            return await self._refused_rotation(key, stored, error.rotated, error)
        except WhopOAuthError as error:
            return await self._failed(key, stored, rejected, error)
        try:
            saved = await self._store_rotation(key, stored, fresh, lease)
        except StaleWriteError:
            return await self._lost_write(key, fresh)
        self._quiet_until.pop(key, None)
        self._remember(key, saved.token)
        info = RefreshInfo(
            expires_at=fresh.expires_at,
            scopes=fresh.scopes,
            rotated=fresh.refresh_token != stored.token.refresh_token,
            forced=rejected is not None,
            duration=time.monotonic() - started,
        )
        logger.debug("refreshed a token for tenant=%s user=%s", key.tenant, key.user)
        await call_hook(self._hooks.on_refresh, key, info)
        return saved.token

    async def _invalid_grant(
        self, key: TokenKey, stored: StoredToken, error: InvalidGrantError
    ) -> Token:
        current = await self._read(key)
        if current is not None and current.token.refresh_token != stored.token.refresh_token:
            return current.token  # a worker whose lease outlived ours stored a rotated grant
        await report_failure(self._hooks, key, error)
        if current is not None:
            await self._delete(key, current, "invalid_grant")
        logger.info("refresh token refused for tenant=%s user=%s", key.tenant, key.user)
        raise error

    async def _failed(
        self, key: TokenKey, stored: StoredToken, rejected: str | None, error: WhopOAuthError
    ) -> Token:
        # The stored grant is left alone: the refresh token may still be good.
        pause = error.retry_after if isinstance(error, RateLimitedError) else None
        self._quiet_until[key] = time.monotonic() + (pause or self._backoff)
        if len(self._quiet_until) > 10_000:
            now = time.monotonic()
            self._quiet_until = {k: t for k, t in self._quiet_until.items() if t > now}
        name = type(error).__name__
        logger.warning("token refresh failed for tenant=%s user=%s: %s", key.tenant, key.user, name)
        await report_failure(self._hooks, key, error)
        if self._servable(stored.token, rejected) and not isinstance(error, ConfigurationError):
            return stored.token
        raise error

    async def _store_rotation(
        self, key: TokenKey, stored: StoredToken, fresh: Token, lease: Lease
    ) -> StoredToken:
        # The provider has rotated: a store hiccup must not lose the answer, so the
        # versioned, fenced write is retried within the request's deadline.
        give_up = time.monotonic() + self._request_budget
        pause = 0.05
        while True:
            try:
                return await self.store.put(
                    key, fresh, expected_version=stored.version, fence=lease.generation
                )
            except StaleWriteError:
                raise
            except TokenStoreError as error:
                if time.monotonic() + pause >= give_up:
                    logger.warning(
                        "a rotated grant could not be stored for tenant=%s: %s",
                        key.tenant,
                        type(error).__name__,
                    )
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _refused_rotation(
        self, key: TokenKey, stored: StoredToken, rotated: Token, error: IdTokenError
    ) -> Token:
        # The refresh answered for another user: its grant is revoked, not stored, and
        # the spent one is deleted so that nobody presents it again.
        logger.warning("a refresh answered with another user's id_token; the grant is ended")
        await self._revocations.revoke(rotated, reason="foreign-id-token")
        await report_failure(self._hooks, key, error)
        await self._delete(key, stored, "invalid_grant")
        raise error

    async def _lost_write(self, key: TokenKey, fresh: Token) -> Token:
        # Someone wrote after our read although we held the lease (it lapsed, or the
        # user signed out or in meanwhile): their row wins, and our rotation, which
        # nobody will ever use, is revoked rather than left live at the provider.
        logger.warning("a refreshed token lost a conditional write for tenant=%s", key.tenant)
        current = await self._read(key)
        if current is None or current.token.refresh_token != fresh.refresh_token:
            await self._revocations.revoke(fresh, reason="lost-write")
        if current is None:
            raise NoGrantError("the grant was deleted during the refresh: sign in again")
        return current.token

    # -- in-process cache ------------------------------------------------------------

    def _remember(self, key: TokenKey, token: Token) -> None:
        if self._cache_ttl <= 0:
            return
        now = time.monotonic()
        servable_until = now + self._cache_ttl
        if token.expires_at is not None:  # until it falls due, the moment _due says so
            due_in = token.expires_at - self._margin(token) - time.time()
            servable_until = min(servable_until, now + due_in)
        if len(self._cache) >= 10_000:  # bounded: drop the oldest entry
            del self._cache[next(iter(self._cache))]
        self._cache[key.tenant, key.user] = (token, servable_until)

    def _forget(self, key: TokenKey) -> None:
        self._cache.pop((key.tenant, key.user), None)

    # -- store helpers ---------------------------------------------------------------

    async def _read(self, key: TokenKey) -> StoredToken | None:
        try:
            return await self.store.get(key)
        except DecryptionError:
            if self._undecryptable == "raise":
                raise
        self._forget(key)
        await self.store.delete(key)
        logger.warning("deleted an undecryptable grant for tenant=%s", key.tenant)
        await call_hook(self._hooks.on_grant_deleted, key, "undecryptable")
        return None

    async def _delete(self, key: TokenKey, stored: StoredToken, reason: DeletionReason) -> None:
        self._forget(key)
        try:
            deleted = await self.store.delete(key, expected_version=stored.version)
        except StaleWriteError:
            return  # a newer grant arrived (e.g. a fresh sign-in): keep it
        if deleted:
            await call_hook(self._hooks.on_grant_deleted, key, reason)
