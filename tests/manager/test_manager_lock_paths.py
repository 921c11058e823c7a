"""TokenManager inside the refresh lock: the lease is checked right before the refresh token
leaves and held until the answer is stored; the grant is read again and judged again."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from app_driver import USER, expired, sign_in

from whop_oauth import (
    LockLost,
    LockTimeout,
    NoGrantError,
    OAuthClient,
    RefreshHooks,
    SignInRequired,
    Token,
    TokenKey,
    TokenManager,
)
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop


class LockWatch(MemoryTokenStore):
    """A memory store that runs ``on_lock`` before the next lock is taken and records the
    ``reserve`` calls made on its leases."""

    def __init__(self) -> None:
        super().__init__()
        self.on_lock: Callable[[], Awaitable[object]] | None = None
        self.reserved: list[tuple[float, float | None]] = []
        self.taken: list[tuple[float, float]] = []  # (lease, timeout) of each lock

    def lock(self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0) -> Any:
        self.taken.append((lease, timeout))
        return _Watched(self, super().lock(key, lease=lease, timeout=timeout))


class _Watched:
    def __init__(self, store: LockWatch, inner: Any) -> None:
        self._store, self._inner = store, inner

    async def __aenter__(self) -> Any:
        hook, self._store.on_lock = self._store.on_lock, None
        if hook is not None:
            await hook()
        lease = await self._inner.__aenter__()
        return _RecordingLease(self._store, lease)

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


class _RecordingLease:
    def __init__(self, store: LockWatch, lease: Any) -> None:
        self._store, self._lease = store, lease

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lease, name)

    async def reserve(self, seconds: float, *, hold: float | None = None) -> None:
        self._store.reserved.append((seconds, hold))
        await self._lease.reserve(seconds, hold=hold)


@pytest.fixture
def store() -> LockWatch:
    return LockWatch()


@pytest.fixture
async def grant(client: OAuthClient, mock_http: httpx.AsyncClient) -> Token:
    return await sign_in(client, mock_http)


class TakesTheLeaseFirst:
    """The real client, but this worker's lease is taken over just before it would send
    (it froze in between, and another worker took the lock)."""

    def __init__(self, client: OAuthClient, store: LockWatch) -> None:
        self._client, self._store = client, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def refresh(self, token: Token, **options: Any) -> Token:
        key = self._client.token_key(USER)
        self._store._leases.pop(key)
        assert await self._store.acquire_lease(key, "another-worker", 60) > 0
        return await self._client.refresh(token, **options)


async def test_a_lease_lost_before_sending_sends_nothing(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    manager = TokenManager(TakesTheLeaseFirst(client, store), store, lock_timeout=0.2)  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)
    requests = mock.stats.token_requests

    with pytest.raises(LockTimeout):  # the other worker keeps the lock
        await manager.get_token(user=USER)

    assert mock.stats.token_requests == requests  # the refresh token never left
    assert mock.stats.refresh_reuse_detected == 0


async def test_the_lease_is_reserved_for_the_request_and_held_through_the_write(
    client: OAuthClient, store: LockWatch, grant: Token
) -> None:
    manager = TokenManager(client, store)
    await manager.save(expired(grant), user=USER)

    await manager.get_token(user=USER)

    # One deadline for the request, then renewals for one more: the write's retries.
    assert store.reserved == [(client.deadline, 2 * client.deadline)]


async def test_a_401_refreshes_even_if_the_rejected_token_was_rewritten_meanwhile(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)
    key = manager.key(user=USER)

    async def rewritten() -> None:  # e.g. re-encrypted under a new key: same token, new version
        await store.put(key, grant)

    store.on_lock = rewritten
    token = await manager.refresh(user=USER, rejected_access_token=grant.access_token)

    assert token.access_token != grant.access_token
    assert mock.stats.token_refresh == 1


async def test_a_grant_deleted_before_the_lock_is_taken_asks_for_sign_in(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(expired(grant), user=USER)
    store.on_lock = lambda: store.delete(manager.key(user=USER))  # signed out meanwhile

    with pytest.raises(NoGrantError) as caught:
        await manager.get_token(user=USER)
    assert str(caught.value) == "no token is stored for this user: sign in first"
    assert mock.stats.token_refresh == 0


async def test_an_expired_grant_without_refresh_token_says_why_sign_in_is_needed(
    client: OAuthClient, store: LockWatch
) -> None:
    manager = TokenManager(client, store)
    await manager.save(Token("at-only", expires_at=time.time() - 1), user=USER)

    with pytest.raises(SignInRequired) as caught:
        await manager.get_token(user=USER)
    assert str(caught.value) == "the access token expired and there is no refresh token"


class LeaseTakenOver:
    """The real client; just before it would send, another worker takes the lease over
    and then does ``meanwhile`` (store a refresh of its own, sign out, or nothing)."""

    def __init__(
        self, client: OAuthClient, store: LockWatch, meanwhile: Callable[[], Awaitable[object]]
    ) -> None:
        self._client, self._store, self._meanwhile = client, store, meanwhile
        self.takeovers = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def refresh(self, token: Token, **options: Any) -> Token:
        if not self.takeovers:
            self.takeovers += 1
            key = self._client.token_key(USER)
            self._store._leases.pop(key)
            assert await self._store.acquire_lease(key, "another-worker", 60) > 0
            await self._meanwhile()
            await self._store.release_lease(key, "another-worker")
        return await self._client.refresh(token, **options)


async def test_a_lost_lease_whose_taker_refreshed_serves_the_takers_token(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    key = client.token_key(USER)
    theirs = Token("at-theirs", refresh_token="rt-theirs", expires_at=time.time() + 3600)
    spy = LeaseTakenOver(client, store, lambda: store.put(key, theirs))
    manager = TokenManager(spy, store)  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)

    assert await manager.get_token(user=USER) == theirs
    assert mock.stats.token_refresh == 0


def due(token: Token) -> Token:
    """Still valid for 30 s: inside the default leeway."""
    now = time.time()
    return dataclasses.replace(token, expires_at=now + 30, issued_at=now - 3600)


@pytest.mark.parametrize("state", [expired, due])
async def test_a_lost_lease_whose_taker_did_nothing_is_taken_again_and_refreshed(
    client: OAuthClient,
    store: LockWatch,
    grant: Token,
    mock: MockWhop,
    state: Callable[[Token], Token],
) -> None:
    spy = LeaseTakenOver(client, store, lambda: store.get(client.token_key(USER)))
    manager = TokenManager(spy, store)  # type: ignore[arg-type]
    await manager.save(state(grant), user=USER)

    token = await manager.get_token(user=USER)

    assert token.refresh_token not in (None, grant.refresh_token)
    assert (mock.stats.token_refresh, mock.stats.refresh_reuse_detected) == (1, 0)


async def test_a_lost_lease_whose_taker_signed_out_asks_for_sign_in(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    spy = LeaseTakenOver(client, store, lambda: store.delete(client.token_key(USER)))
    manager = TokenManager(spy, store)  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)

    with pytest.raises(NoGrantError) as caught:
        await manager.get_token(user=USER)
    assert str(caught.value) == "the grant was deleted during the refresh"
    assert mock.stats.token_refresh == 0


async def test_a_lost_lease_after_the_lock_timeout_is_reported_and_raised(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    failed: list[tuple[TokenKey, Any]] = []
    hooks = RefreshHooks(on_refresh_failed=lambda key, failure: failed.append((key, failure)))
    spy = LeaseTakenOver(client, store, lambda: store.get(client.token_key(USER)))
    manager = TokenManager(spy, store, lock_timeout=0, hooks=hooks)  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)

    with pytest.raises(LockLost):
        await manager.get_token(user=USER)
    assert [(key, failure.error_type) for key, failure in failed] == [
        (manager.key(user=USER), LockLost)
    ]
    assert mock.stats.token_refresh == 0


async def test_sign_in_and_refresh_lock_for_the_managers_lease_and_timeout(
    client: OAuthClient, store: LockWatch, grant: Token
) -> None:
    manager = TokenManager(client, store, lock_lease=45, lock_timeout=7)
    await manager.save(expired(grant), user=USER)
    await manager.get_token(user=USER)

    [(save_lease, save_timeout), (refresh_lease, refresh_timeout)] = store.taken
    assert (save_lease, save_timeout) == (45, 7)
    assert refresh_lease == 45
    assert 6 < refresh_timeout <= 7  # what is left of lock_timeout


async def test_a_lock_timeout_bounds_the_wait_for_a_lock_held_elsewhere(
    client: OAuthClient, store: LockWatch, grant: Token
) -> None:
    manager = TokenManager(client, store, lock_timeout=0.1)
    await manager.save(expired(grant), user=USER)
    await store.acquire_lease(manager.key(user=USER), "a-stuck-worker", 60)

    started = time.monotonic()
    with pytest.raises(LockTimeout):
        await manager.get_token(user=USER)
    assert time.monotonic() - started < 0.6


async def test_a_401_whose_lease_was_lost_to_a_rewrite_of_the_same_token_still_refreshes(
    client: OAuthClient, store: LockWatch, grant: Token, mock: MockWhop
) -> None:
    key = client.token_key(USER)
    spy = LeaseTakenOver(client, store, lambda: store.put(key, grant))  # re-encrypted, say
    manager = TokenManager(spy, store)  # type: ignore[arg-type]
    await manager.save(grant, user=USER)

    token = await manager.refresh(user=USER, rejected_access_token=grant.access_token)

    assert token.access_token != grant.access_token
    assert mock.stats.token_refresh == 1
