"""TokenManager: when it refreshes, what it keeps, what it deletes, and what hooks see."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_driver import USER, expired, sign_in
from store_fixtures import StoreFactory

from whop_oauth import (
    DecryptionError,
    InvalidGrantError,
    LockTimeout,
    NoGrantError,
    OAuthClient,
    ProviderError,
    RateLimitedError,
    RefreshFailure,
    RefreshHooks,
    ServerUnavailableError,
    SignInRequired,
    Token,
    TokenKey,
    TokenManager,
    generate_encryption_key,
)
from whop_oauth.stores import MemoryTokenStore, TokenStore
from whop_oauth.testing import MockWhop


class Recorder:
    """Hooks that record every call, to check what they were told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.hooks = RefreshHooks(
            on_refresh=lambda *a: self.calls.append(("refresh", a)),
            on_refresh_failed=lambda *a: self.calls.append(("failed", a)),
            on_grant_deleted=lambda *a: self.calls.append(("deleted", a)),
        )

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def manager(client: OAuthClient, store: TokenStore, recorder: Recorder) -> TokenManager:
    return TokenManager(client, store, hooks=recorder.hooks)


@pytest.fixture
async def grant(client: OAuthClient, mock_http: httpx.AsyncClient) -> Token:
    """A real grant from the mock's code flow."""
    return await sign_in(client, mock_http)


def due(token: Token, seconds_left: float = 30) -> Token:
    """An hour-long token with ``seconds_left``: still valid, inside the default 60 s leeway."""
    now = time.time()
    return dataclasses.replace(token, expires_at=now + seconds_left, issued_at=now - 3600)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition another task or thread makes true (polled: it has no event)."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.002)


async def stored(store: TokenStore, manager: TokenManager) -> Token | None:
    read = await store.get(manager.key(user=USER))
    return None if read is None else read.token


async def test_a_fresh_token_is_served_without_calling_the_provider(
    manager: TokenManager, grant: Token, mock: MockWhop
) -> None:
    await manager.save(grant, user=USER)
    assert await manager.access_token(user=USER) == grant.access_token
    assert mock.stats.token_refresh == 0


async def test_a_token_inside_the_leeway_is_refreshed_and_the_rotation_stored(
    manager: TokenManager, store: TokenStore, grant: Token, mock: MockWhop
) -> None:
    await manager.save(due(grant), user=USER)
    token = await manager.get_token(user=USER)
    assert token.access_token != grant.access_token
    assert token.refresh_token not in (None, grant.refresh_token)
    assert await stored(store, manager) == token
    assert mock.stats.token_refresh == 1


async def test_nothing_stored_means_sign_in_first(manager: TokenManager) -> None:
    with pytest.raises(NoGrantError):
        await manager.get_token(user=USER)
    with pytest.raises(NoGrantError):
        await manager.refresh(user=USER)


async def test_a_forced_refresh_replaces_a_rejected_token_only_once(
    manager: TokenManager, grant: Token, mock: MockWhop
) -> None:
    await manager.save(grant, user=USER)
    first = await manager.refresh(user=USER, rejected_access_token=grant.access_token)
    again = await manager.refresh(user=USER, rejected_access_token=grant.access_token)
    assert first.access_token != grant.access_token
    assert again == first
    assert mock.stats.token_refresh == 1


async def test_many_concurrent_401s_for_one_token_bring_one_refresh(
    manager: TokenManager, grant: Token, mock: MockWhop
) -> None:
    await manager.save(grant, user=USER)
    results = await asyncio.gather(
        *(manager.refresh(user=USER, rejected_access_token=grant.access_token) for _ in range(200))
    )
    assert len({token.access_token for token in results}) == 1
    assert results[0].access_token != grant.access_token
    assert mock.stats.token_refresh == 1


async def test_a_refused_refresh_token_deletes_the_grant_and_asks_for_sign_in(
    manager: TokenManager,
    store: TokenStore,
    client: OAuthClient,
    grant: Token,
    recorder: Recorder,
) -> None:
    await manager.save(expired(grant), user=USER)
    await client.revoke(grant)  # the provider forgets the grant behind our back
    with pytest.raises(InvalidGrantError) as caught:
        await manager.get_token(user=USER)
    assert isinstance(caught.value, SignInRequired)
    assert await stored(store, manager) is None
    assert recorder.names() == ["failed", "deleted"]
    [(_, (failed_key, failure)), (_, deleted)] = recorder.calls
    assert failed_key == manager.key(user=USER)
    assert (failure.error_type, failure.oauth_error, failure.status_code) == (
        type(caught.value),
        "invalid_grant",
        400,
    )
    assert deleted == (manager.key(user=USER), "invalid_grant")


async def test_a_refused_refresh_token_after_a_sibling_rotated_serves_the_siblings_token(
    store: TokenStore, grant: Token
) -> None:
    sibling = Token(
        access_token="sibling-at", refresh_token="sibling-rt", expires_at=time.time() + 3600
    )

    class LosingClient:
        issuer, client_id, deadline = "https://mock-whop.test", "app_mock", 5.0

        def token_key(self, user: str, tenant: str = "default") -> Any:
            return OAuthClient.token_key(self, user, tenant)  # type: ignore[arg-type]

        async def refresh(self, token: Token, **options: Any) -> Token:
            # Another worker, whose lease outlived ours, rotated the grant meanwhile.
            await store.put(manager.key(user=USER), sibling)
            raise InvalidGrantError("invalid_grant", "refresh token already used")

        async def revoke(self, token: Token) -> None:
            raise AssertionError("nothing is revoked")

    manager = TokenManager(LosingClient(), store)
    await manager.save(expired(grant), user=USER)
    assert await manager.get_token(user=USER) == sibling
    assert await stored(store, manager) == sibling


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (500, None, ProviderError),  # {"error": "server_error"}
        (502, b"<html>Bad Gateway</html>", ServerUnavailableError),
        (503, None, ProviderError),  # {"error": "temporarily_unavailable"}
    ],
)
async def test_a_transient_failure_serves_the_unexpired_token_and_keeps_the_grant(
    status: int,
    body: bytes | None,
    error_type: type[Exception],
    manager: TokenManager,
    store: TokenStore,
    grant: Token,
    mock: MockWhop,
    recorder: Recorder,
) -> None:
    await manager.save(due(grant), user=USER)
    before = await store.get(manager.key(user=USER))
    assert before is not None
    mock.fail_next("token", status, body)
    assert await manager.get_token(user=USER) == before.token
    assert await store.get(manager.key(user=USER)) == before
    assert recorder.names() == ["failed"]
    failure = recorder.calls[0][1][1]
    assert (failure.error_type, failure.status_code) == (error_type, status)
    requests = mock.stats.token_requests
    await manager.get_token(user=USER)  # within the back-off: no new attempt
    assert mock.stats.token_requests == requests


async def test_a_transient_failure_on_an_expired_token_raises_and_keeps_the_grant(
    manager: TokenManager, store: TokenStore, grant: Token, mock: MockWhop
) -> None:
    await manager.save(expired(grant), user=USER)
    before = await store.get(manager.key(user=USER))
    mock.fail_next("token", 502, b"<html>Bad Gateway</html>")
    with pytest.raises(ServerUnavailableError):
        await manager.get_token(user=USER)
    assert await store.get(manager.key(user=USER)) == before
    token = await manager.get_token(user=USER)  # the provider is back: the grant still works
    assert token.refresh_token != grant.refresh_token


async def test_a_rate_limit_pauses_proactive_refreshes_for_its_retry_after(
    manager: TokenManager, grant: Token, mock: MockWhop
) -> None:
    await manager.save(due(grant), user=USER)
    mock.fail_next("token", 429, headers={"Retry-After": "30"})
    assert (await manager.get_token(user=USER)).access_token == grant.access_token
    key = manager.key(user=USER)
    assert manager._quiet_until[key] - time.monotonic() > 25
    requests = mock.stats.token_requests
    await manager.get_token(user=USER)
    assert mock.stats.token_requests == requests


async def test_a_rate_limit_on_an_expired_token_raises_rate_limited(
    manager: TokenManager, grant: Token, mock: MockWhop
) -> None:
    await manager.save(expired(grant), user=USER)
    mock.fail_next("token", 429, headers={"Retry-After": "3"})
    with pytest.raises(RateLimitedError) as caught:
        await manager.get_token(user=USER)
    assert caught.value.retry_after == 3


async def test_hooks_learn_metadata_but_never_a_token_value(
    manager: TokenManager, grant: Token, recorder: Recorder, mock: MockWhop
) -> None:
    await manager.save(expired(grant), user=USER)
    mock.fail_next("token", 500, b"<html>oops</html>")
    with pytest.raises(ServerUnavailableError) as caught:
        await manager.get_token(user=USER)
    fresh = await manager.get_token(user=USER)
    await manager.sign_out(user=USER)
    assert recorder.names() == ["failed", "refresh", "deleted"]
    key = manager.key(user=USER)
    assert key == TokenKey("default", USER, mock.issuer, "app_mock")
    # Every hook is told the exact key (tenant, user, issuer, client) and only metadata.
    [(_, failed), (_, refreshed), (_, deleted)] = recorder.calls
    assert failed[0] == key
    assert failed[1] == RefreshFailure(
        error_type=ServerUnavailableError,
        message=failed[1].message,
        oauth_error=None,
        status_code=500,
        retry_after=None,
    )
    assert failed[1].message == str(caught.value)
    assert refreshed[0] == key
    info = refreshed[1]
    assert (info.expires_at, info.scopes, info.rotated, info.forced) == (
        fresh.expires_at,
        fresh.scopes,
        True,
        False,
    )
    assert fresh.scopes == ("openid", "profile", "email")
    assert 0 <= info.duration < 5
    assert deleted == (key, "sign_out")
    told = repr(recorder.calls) + "".join(str(args) for _, args in recorder.calls)
    for token in (grant, fresh):
        for value in (token.access_token, token.refresh_token, token.id_token):
            assert value is not None
            assert value not in told


async def test_a_hook_that_raises_does_not_break_the_refresh(
    client: OAuthClient, store: TokenStore, grant: Token
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("metrics backend down")

    manager = TokenManager(client, store, hooks=RefreshHooks(on_refresh=broken))
    await manager.save(expired(grant), user=USER)
    assert (await manager.get_token(user=USER)).access_token != grant.access_token


async def test_sign_out_revokes_at_the_provider_and_deletes_locally(
    manager: TokenManager, store: TokenStore, grant: Token, mock: MockWhop
) -> None:
    await manager.save(grant, user=USER)
    assert await manager.sign_out(user=USER) is True
    assert mock.is_revoked(grant.refresh_token)  # type: ignore[arg-type]
    assert await stored(store, manager) is None
    assert await manager.sign_out(user=USER) is False


async def test_sign_out_deletes_locally_even_when_revocation_fails(
    manager: TokenManager, store: TokenStore, grant: Token, mock: MockWhop
) -> None:
    await manager.save(grant, user=USER)
    mock.fail_next("revoke", 500, times=5)
    assert await manager.sign_out(user=USER) is True
    assert await stored(store, manager) is None


async def test_a_cancelled_caller_does_not_abort_a_refresh_in_flight(
    manager: TokenManager, store: TokenStore, grant: Token, mock: MockWhop
) -> None:
    await manager.save(expired(grant), user=USER)
    mock.delay_next("token", 0.3)  # processed at once, answered late
    caller = asyncio.create_task(manager.get_token(user=USER))
    await until(lambda: mock.stats.token_refresh == 1)  # the provider rotated the grant
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    token = await manager.get_token(user=USER)
    assert token.refresh_token != grant.refresh_token
    assert await stored(store, manager) == token
    stats = mock.stats
    assert (stats.token_refresh, stats.refresh_reuse_detected) == (1, 0)


async def test_a_token_without_refresh_token_is_served_until_it_expires(
    manager: TokenManager, store: TokenStore, recorder: Recorder
) -> None:
    bare = Token(access_token="at-only", expires_at=time.time() + 30)
    await manager.save(bare, user=USER)
    assert await manager.get_token(user=USER) == bare
    await manager.save(dataclasses.replace(bare, expires_at=time.time() - 1), user=USER)
    with pytest.raises(SignInRequired):
        await manager.get_token(user=USER)
    assert await stored(store, manager) is None
    assert recorder.calls[-1][1][1] == "no_refresh_token"


async def test_a_lock_held_elsewhere_serves_a_still_valid_token_then_times_out(
    client: OAuthClient, store: MemoryTokenStore, grant: Token
) -> None:
    manager = TokenManager(client, store, lock_timeout=0.1)
    await manager.save(due(grant), user=USER)
    await store.acquire_lease(manager.key(user=USER), "a-stuck-worker", 60)
    assert (await manager.get_token(user=USER)).access_token == grant.access_token
    # Written straight to the store: save() itself takes the lock held elsewhere.
    await store.put(manager.key(user=USER), expired(grant))
    with pytest.raises(LockTimeout):
        await manager.get_token(user=USER)


async def test_an_undecryptable_grant_raises_unless_deletion_was_chosen(
    client: OAuthClient, tmp_path: Path, open_stores: StoreFactory, grant: Token, recorder: Recorder
) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    writer = TokenManager(client, await open_stores(url))
    await writer.save(grant, user=USER)
    wrong_keys = [generate_encryption_key()]
    strict = TokenManager(client, await open_stores(url, encryption_keys=wrong_keys))
    with pytest.raises(DecryptionError):
        await strict.get_token(user=USER)
    lenient = TokenManager(
        client,
        await open_stores(url, encryption_keys=wrong_keys),
        undecryptable="delete",
        hooks=recorder.hooks,
    )
    with pytest.raises(NoGrantError):
        await lenient.get_token(user=USER)
    assert recorder.calls[-1][1][1] == "undecryptable"
    assert await (await open_stores(url)).get(writer.key(user=USER)) is None


async def test_sign_out_leaves_a_grant_stored_meanwhile_by_another_sign_in(
    client: OAuthClient, store: TokenStore, grant: Token
) -> None:
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)
    newer = Token("at_other_device", refresh_token="rt_other_device")
    real_revoke = manager._revocations.revoke

    async def revoke_while_a_sign_in_lands(token: Token, *, reason: str) -> bool:
        await store.put(manager.key(user=USER), newer)  # another device signs in now
        return await real_revoke(token, reason=reason)

    manager._revocations.revoke = revoke_while_a_sign_in_lands  # type: ignore[method-assign]
    await manager.sign_out(user=USER)

    kept = await store.get(manager.key(user=USER))
    assert kept is not None
    assert kept.token.refresh_token == "rt_other_device"
