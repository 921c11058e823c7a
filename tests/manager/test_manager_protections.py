"""TokenManager's protections, each shown to matter: tenants kept apart, versioned writes,
guarded deletes, one lock per refresh, a cache that expires, and a 401 never answered
with the token the API just rejected."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_driver import USER, expired, sign_in
from store_fixtures import StoreFactory

from whop_oauth import (
    InvalidGrantError,
    InvalidTokenKey,
    LockTimeout,
    NoGrantError,
    OAuthClient,
    RefreshHooks,
    SignInRequired,
    StaleWriteError,
    Token,
    TokenKey,
    TokenManager,
    TokenStoreError,
    generate_encryption_key,
)
from whop_oauth.stores import Lease, MemoryTokenStore, StoredToken
from whop_oauth.testing import MockWhop


class CountingStore(MemoryTokenStore):
    """A memory store that counts reads and lock acquisitions."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.locks = 0

    async def get(self, key: TokenKey) -> StoredToken | None:
        self.reads += 1
        return await super().get(key)

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[Lease]:
        self.locks += 1
        return super().lock(key, lease=lease, timeout=timeout)


class Meanwhile:
    """The real client; ``during`` runs after the provider answered a refresh, before the
    manager stores the answer (another process acting while the answer is on the wire)."""

    def __init__(self, client: OAuthClient, during: Callable[[], Awaitable[object]]) -> None:
        self._client = client
        self._during = during
        self.answers: list[Token] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def refresh(self, token: Token, **options: Any) -> Token:
        fresh = await self._client.refresh(token, **options)
        self.answers.append(fresh)
        await self._during()
        return fresh


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
async def grant(client: OAuthClient, mock_http: httpx.AsyncClient) -> Token:
    return await sign_in(client, mock_http)


def deleted_hooks(calls: list[tuple[TokenKey, str]]) -> RefreshHooks:
    return RefreshHooks(on_grant_deleted=lambda key, reason: calls.append((key, reason)))


async def stored_token(store: MemoryTokenStore, key: TokenKey) -> Token | None:
    row = await store.get(key)
    return None if row is None else row.token


# -- tenants --------------------------------------------------------------------------------


async def test_each_tenants_grant_is_served_refreshed_and_signed_out_on_its_own(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    in_a, in_b = await sign_in(client, mock_http), await sign_in(client, mock_http)
    await manager.save(in_a, user=USER, tenant="biz_a")
    await manager.save(in_b, user=USER, tenant="biz_b")
    key_a, key_b = manager.key(user=USER, tenant="biz_a"), manager.key(user=USER, tenant="biz_b")
    assert (key_a.tenant, key_b.tenant) == ("biz_a", "biz_b")

    assert await manager.access_token(user=USER, tenant="biz_a") == in_a.access_token
    assert await manager.access_token(user=USER, tenant="biz_b") == in_b.access_token
    assert (await manager.get_token(user=USER, tenant="biz_b")) == in_b
    with pytest.raises(NoGrantError):
        await manager.access_token(user=USER)  # nothing stored under the default tenant

    refreshed = await manager.refresh(
        user=USER, tenant="biz_b", rejected_access_token=in_b.access_token
    )
    assert refreshed.access_token != in_b.access_token
    assert await stored_token(store, key_b) == refreshed
    assert await stored_token(store, key_a) == in_a

    assert await manager.sign_out(user=USER, tenant="biz_a") is True
    assert mock.is_revoked(in_a.refresh_token)  # type: ignore[arg-type]
    assert await stored_token(store, key_a) is None
    assert await stored_token(store, key_b) == refreshed
    assert await manager.sign_out(user=USER) is False


# -- the versioned write after a refresh, and a lost write ------------------------------------


async def test_a_sign_in_landing_during_a_refresh_wins_and_the_refreshed_grant_is_revoked(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore, mock: MockWhop
) -> None:
    key = client.token_key(USER)
    newer = await sign_in(client, mock_http)  # another device, signed in meanwhile
    meanwhile = Meanwhile(client, lambda: store.put(key, newer))
    manager = TokenManager(meanwhile, store)  # type: ignore[arg-type]
    await manager.save(expired(await sign_in(client, mock_http)), user=USER)

    assert await manager.get_token(user=USER) == newer
    assert await stored_token(store, key) == newer
    [fresh] = meanwhile.answers
    assert mock.is_revoked(fresh.refresh_token)  # type: ignore[arg-type]
    assert not mock.is_revoked(newer.refresh_token)  # type: ignore[arg-type]


async def test_a_sign_out_landing_during_a_refresh_ends_the_grant_and_revokes_the_refresh(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore, mock: MockWhop
) -> None:
    key = client.token_key(USER)
    meanwhile = Meanwhile(client, lambda: store.delete(key))
    manager = TokenManager(meanwhile, store)  # type: ignore[arg-type]
    await manager.save(expired(await sign_in(client, mock_http)), user=USER)

    with pytest.raises(NoGrantError) as caught:
        await manager.get_token(user=USER)
    assert str(caught.value) == "the grant was deleted during the refresh: sign in again"
    assert await store.get(key) is None
    [fresh] = meanwhile.answers
    assert mock.is_revoked(fresh.refresh_token)  # type: ignore[arg-type]


class CommitsThenFails(CountingStore):
    """The first versioned write commits, then its answer is lost (a dropped connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost_answers = 0

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        written = await super().put(key, token, expected_version=expected_version, fence=fence)
        if expected_version is not None and not self.lost_answers:
            self.lost_answers += 1
            raise TokenStoreError("connection lost after the write")
        return written


async def test_a_write_that_committed_but_lost_its_answer_keeps_the_rotated_grant_live(
    client: OAuthClient, grant: Token, mock: MockWhop
) -> None:
    store = CommitsThenFails()
    manager = TokenManager(client, store)
    await manager.save(expired(grant), user=USER)

    token = await manager.get_token(user=USER)  # the retry finds its own write: stale

    assert store.lost_answers == 1
    assert token.refresh_token not in (None, grant.refresh_token)
    assert await stored_token(store, manager.key(user=USER)) == token
    assert not mock.is_revoked(token.refresh_token)  # type: ignore[arg-type]
    assert await manager.refresh(user=USER) != token  # and it still refreshes


# -- invalid_grant: only the grant that was refused goes ----------------------------------


async def test_a_refused_refresh_deletes_only_the_refused_grant_not_a_sign_in_meanwhile(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore
) -> None:
    key = client.token_key(USER)
    newer = await sign_in(client, mock_http)
    deleted: list[tuple[TokenKey, str]] = []

    async def sign_in_lands(*_: object) -> None:  # between the re-read and the delete
        await store.put(key, newer)

    hooks = RefreshHooks(
        on_refresh_failed=sign_in_lands,
        on_grant_deleted=lambda k, reason: deleted.append((k, reason)),
    )
    manager = TokenManager(client, store, hooks=hooks)
    refused = await sign_in(client, mock_http)
    await manager.save(expired(refused), user=USER)
    await client.revoke(refused)  # the provider forgets it: the refresh gets invalid_grant

    with pytest.raises(InvalidGrantError):
        await manager.get_token(user=USER)
    assert await stored_token(store, key) == newer
    assert deleted == []
    assert await manager.access_token(user=USER) == newer.access_token


async def test_a_refused_refresh_of_a_grant_deleted_meanwhile_still_asks_for_sign_in(
    client: OAuthClient, grant: Token, store: CountingStore
) -> None:
    key = client.token_key(USER)
    deleted: list[tuple[TokenKey, str]] = []

    async def refresh_refused(token: Token, **options: Any) -> Token:
        await store.delete(key)  # signed out elsewhere while the refresh was on the wire
        raise InvalidGrantError("invalid_grant", "refresh token revoked")

    meanwhile = Meanwhile(client, lambda: asyncio.sleep(0))
    meanwhile.refresh = refresh_refused  # type: ignore[method-assign]
    manager = TokenManager(meanwhile, store, hooks=deleted_hooks(deleted))  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)

    with pytest.raises(InvalidGrantError):
        await manager.get_token(user=USER)
    assert await store.get(key) is None
    assert deleted == []  # nothing was left for this refresh to delete


# -- one refresh in the process: one lock, one store read inside it ---------------------------


async def test_concurrent_callers_of_a_due_token_take_the_lock_once(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(expired(grant), user=USER)
    store.locks = store.reads = 0

    tokens = await asyncio.gather(*(manager.get_token(user=USER) for _ in range(20)))

    assert len({token.access_token for token in tokens}) == 1
    assert tokens[0].access_token != grant.access_token
    assert mock.stats.token_refresh == 1
    assert store.locks == 1
    assert store.reads == 20 + 1  # each caller's first read, then one inside the lock


async def test_concurrent_401s_take_the_lock_once(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)
    store.locks = 0

    tokens = await asyncio.gather(
        *(manager.refresh(user=USER, rejected_access_token=grant.access_token) for _ in range(20))
    )

    assert {token.access_token for token in tokens} == {tokens[0].access_token}
    assert tokens[0].access_token != grant.access_token
    assert (store.locks, mock.stats.token_refresh) == (1, 1)


async def failing_proactive_refresh(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> tuple[TokenManager, Token, asyncio.Task[Token]]:
    """A manager whose due grant's proactive refresh is in flight and will fail (503),
    so it serves the old token; the manager, that token, and the get_token task."""
    now = time.time()
    due = dataclasses.replace(grant, expires_at=now + 30, issued_at=now - 3600)
    manager = TokenManager(client, store)
    await manager.save(due, user=USER)
    store.locks = 0
    mock.fail_next("token", 503)
    proactive = asyncio.create_task(manager.get_token(user=USER))
    await asyncio.sleep(0)  # its refresh is in flight
    assert manager._inflight
    return manager, due, proactive


async def test_a_401_during_a_refresh_that_kept_the_rejected_token_refreshes_once_more(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> None:
    manager, due, proactive = await failing_proactive_refresh(client, grant, store, mock)

    after_401 = await manager.refresh(user=USER, rejected_access_token=due.access_token)

    assert (await proactive).access_token == due.access_token
    assert after_401.access_token != due.access_token
    assert mock.stats.token_refresh == 1


# -- the cache: another process's sign-out shows within cache_ttl ----------------------------


async def test_a_sign_out_in_another_process_shows_once_the_cache_ttl_has_passed(
    client: OAuthClient, grant: Token, store: CountingStore
) -> None:
    this_process = TokenManager(client, store, cache_ttl=0.2)
    other_process = TokenManager(client, store)
    await this_process.save(grant, user=USER)
    assert await this_process.access_token(user=USER) == grant.access_token
    await other_process.sign_out(user=USER)

    assert await this_process.access_token(user=USER) == grant.access_token  # cached
    await asyncio.sleep(0.25)
    with pytest.raises(NoGrantError):
        await this_process.access_token(user=USER)


async def test_a_cached_token_that_falls_due_is_refreshed_not_served(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store, leeway=60, cache_ttl=60)
    now = time.time()
    nearly_due = dataclasses.replace(grant, expires_at=now + 60.3, issued_at=now - 3600)
    await manager.save(nearly_due, user=USER)
    assert await manager.access_token(user=USER) == grant.access_token  # now cached
    await asyncio.sleep(0.4)  # inside the cache's 60 s, but now within the leeway

    assert await manager.access_token(user=USER) != grant.access_token
    assert mock.stats.token_refresh == 1


async def test_the_cache_keeps_at_most_ten_thousand_tokens_dropping_the_oldest(
    client: OAuthClient, grant: Token, store: CountingStore
) -> None:
    manager = TokenManager(client, store)
    keys = [manager.key(user=f"user_{n}") for n in range(10_001)]
    for key in keys:
        manager._remember(key, grant)
    assert len(manager._cache) == 10_000
    assert (keys[0].tenant, keys[0].user) not in manager._cache
    assert manager._cache[keys[1].tenant, keys[1].user][0] == grant
    assert manager._cache[keys[-1].tenant, keys[-1].user][0] == grant


@pytest.mark.parametrize("part", ["user", "tenant"])
async def test_an_unhashable_user_or_tenant_is_a_typed_key_error_not_a_type_error(
    client: OAuthClient, grant: Token, store: CountingStore, part: str
) -> None:
    """The cache lookup comes before the key is built: it must not crash on a bad part."""
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)
    assert await manager.access_token(user=USER) == grant.access_token  # cached now
    names = {"user": USER, part: ["not", "a", "string"]}
    with pytest.raises(InvalidTokenKey, match=rf"^TokenKey\.{part} must be a non-empty string$"):
        await manager.get_token(**names)  # type: ignore[arg-type]


# -- after a 401, never the rejected token -------------------------------------------------


async def test_a_401_while_the_lock_is_held_elsewhere_times_out_instead_of_resending(
    client: OAuthClient, grant: Token, store: CountingStore
) -> None:
    manager = TokenManager(client, store, lock_timeout=0.1)
    await manager.save(grant, user=USER)  # valid for an hour
    await store.acquire_lease(manager.key(user=USER), "a-stuck-worker", 60)

    with pytest.raises(LockTimeout):
        await manager.refresh(user=USER, rejected_access_token=grant.access_token)


async def test_a_401_for_a_grant_without_refresh_token_asks_for_sign_in(
    client: OAuthClient, store: CountingStore
) -> None:
    deleted: list[tuple[TokenKey, str]] = []
    manager = TokenManager(client, store, hooks=deleted_hooks(deleted))
    bare = Token(access_token="at-only", expires_at=time.time() + 3600)
    await manager.save(bare, user=USER)

    with pytest.raises(SignInRequired):
        await manager.refresh(user=USER, rejected_access_token="at-only")
    assert await store.get(manager.key(user=USER)) is None
    assert deleted == [(manager.key(user=USER), "no_refresh_token")]


# -- sign-out of a grant nobody can decrypt ------------------------------------------------


async def test_sign_out_of_an_undecryptable_grant_deletes_it_without_revoking(
    client: OAuthClient, tmp_path: Path, open_stores: StoreFactory, grant: Token, mock: MockWhop
) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    writer = TokenManager(client, await open_stores(url))
    await writer.save(grant, user=USER)
    deleted: list[tuple[TokenKey, str]] = []
    wrong_keys = [generate_encryption_key()]
    manager = TokenManager(
        client, await open_stores(url, encryption_keys=wrong_keys), hooks=deleted_hooks(deleted)
    )
    requests = mock.stats.token_requests

    assert await manager.sign_out(user=USER) is True

    assert await (await open_stores(url)).get(writer.key(user=USER)) is None
    assert deleted == [(manager.key(user=USER), "sign_out")]
    assert not mock.is_revoked(grant.refresh_token)  # type: ignore[arg-type]
    assert mock.stats.token_requests == requests


# -- save: the sign-in's write ---------------------------------------------------------------


async def test_a_sign_in_over_an_undecryptable_grant_stores_the_new_one_and_revokes_nothing(
    client: OAuthClient,
    tmp_path: Path,
    open_stores: StoreFactory,
    mock_http: httpx.AsyncClient,
    mock: MockWhop,
) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    old = await sign_in(client, mock_http)
    await TokenManager(client, await open_stores(url)).save(old, user=USER)
    rekeyed = await open_stores(url, encryption_keys=[generate_encryption_key()])
    manager = TokenManager(client, rekeyed)
    new = await sign_in(client, mock_http)

    await manager.save(new, user=USER)

    assert await manager.access_token(user=USER) == new.access_token
    assert not mock.is_revoked(old.refresh_token)  # type: ignore[arg-type]


async def test_saving_the_same_grant_again_does_not_revoke_it(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)
    await manager.save(grant, user=USER)
    assert not mock.is_revoked(grant.refresh_token)  # type: ignore[arg-type]
    assert await manager.access_token(user=USER) == grant.access_token


async def test_a_sign_in_revokes_the_grant_it_replaces_naming_why_if_that_fails(
    client: OAuthClient,
    mock_http: httpx.AsyncClient,
    store: CountingStore,
    mock: MockWhop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TokenManager(client, store)
    first, second, third = [await sign_in(client, mock_http) for _ in range(3)]
    await manager.save(first, user=USER)
    await manager.save(second, user=USER)
    assert mock.is_revoked(first.refresh_token)  # type: ignore[arg-type]

    mock.fail_next("revoke", 400, {"error": "invalid_request"})
    await manager.save(third, user=USER)
    assert "revoking a replaced grant failed" in caplog.text
    assert await manager.access_token(user=USER) == third.access_token


class TakenOverDuringSave(CountingStore):
    """The save's lease is taken over by another worker right after the save read."""

    armed = False

    async def get(self, key: TokenKey) -> StoredToken | None:
        row = await super().get(key)
        if self.armed:
            self.armed = False
            self._leases.pop(key)
            assert await self.acquire_lease(key, "another-worker", 60) > 0
        return row


async def test_a_sign_in_whose_lease_was_taken_over_is_fenced_out(
    client: OAuthClient, mock_http: httpx.AsyncClient
) -> None:
    store = TakenOverDuringSave()
    manager = TokenManager(client, store)
    first = await sign_in(client, mock_http)
    await manager.save(first, user=USER)
    store.armed = True

    with pytest.raises(StaleWriteError):
        await manager.save(await sign_in(client, mock_http), user=USER)
    assert await stored_token(store, manager.key(user=USER)) == first


async def test_two_401s_during_a_refresh_that_kept_the_rejected_token_share_the_next_one(
    client: OAuthClient, grant: Token, store: CountingStore, mock: MockWhop
) -> None:
    manager, due, proactive = await failing_proactive_refresh(client, grant, store, mock)

    after_401 = await asyncio.gather(
        manager.refresh(user=USER, rejected_access_token=due.access_token),
        manager.refresh(user=USER, rejected_access_token=due.access_token),
    )

    assert (await proactive).access_token == due.access_token
    assert after_401[0] == after_401[1]
    assert after_401[0].access_token != due.access_token
    assert (store.locks, mock.stats.token_refresh) == (2, 1)  # the failed one, then one more


async def test_a_refresh_that_fails_after_its_caller_left_leaves_no_unretrieved_error(
    client: OAuthClient, grant: Token, store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()

    class SlowlyFailing(Meanwhile):
        async def refresh(self, token: Token, **options: Any) -> Token:
            started.set()
            await asyncio.sleep(0.05)
            raise InvalidGrantError("invalid_grant", "refresh token revoked")

    manager = TokenManager(SlowlyFailing(client, asyncio.sleep), store)  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)
    caller = asyncio.create_task(manager.get_token(user=USER))
    await started.wait()
    [refresh] = manager._inflight.values()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait([refresh])  # it goes on without its caller, and fails
    await asyncio.sleep(0)  # its done callbacks run
    del caller, refresh
    gc.collect()

    assert [r for r in caplog.records if r.name == "asyncio"] == []
    assert await store.get(manager.key(user=USER)) is None  # the refused grant went
