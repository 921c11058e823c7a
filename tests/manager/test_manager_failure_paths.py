"""TokenManager when things go wrong: what it raises, stores, revokes, tells hooks and logs
(tenant, user and error type, never a token), and the provider origins it trusts."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in
from store_fixtures import StoreFactory

from whop_oauth import (
    IdTokenError,
    InvalidGrantError,
    LockTimeout,
    NoGrantError,
    OAuthClient,
    ProviderError,
    RefreshHooks,
    Token,
    TokenKey,
    TokenManager,
    TokenStoreError,
    generate_encryption_key,
    whop_metadata,
)
from whop_oauth._origins import parse_origin
from whop_oauth.stores import MemoryTokenStore, StoredToken
from whop_oauth.testing import MockWhop

TENANT = "biz_logs"


class Recorder:
    """Hooks that keep what they were told."""

    def __init__(self) -> None:
        self.failed: list[tuple[TokenKey, Any]] = []
        self.deleted: list[tuple[TokenKey, str]] = []
        self.refreshed: list[tuple[TokenKey, Any]] = []
        self.hooks = RefreshHooks(
            on_refresh=lambda key, info: self.refreshed.append((key, info)),
            on_refresh_failed=lambda key, failure: self.failed.append((key, failure)),
            on_grant_deleted=lambda key, reason: self.deleted.append((key, reason)),
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
async def grant(client: OAuthClient, mock_http: httpx.AsyncClient) -> Token:
    return await sign_in(client, mock_http)


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "whop_oauth.manager"]


def no_token_in(caplog: pytest.LogCaptureFixture, *tokens: Token) -> None:
    text = caplog.text
    for token in tokens:
        for value in (token.access_token, token.refresh_token):
            assert value is not None
            assert value not in text


def due(token: Token) -> Token:
    now = time.time()
    return dataclasses.replace(token, expires_at=now + 30, issued_at=now - 3600)


# -- refresh() ------------------------------------------------------------------------------


async def test_refresh_or_get_token_with_nothing_stored_says_to_sign_in_first(
    client: OAuthClient, store: MemoryTokenStore
) -> None:
    manager = TokenManager(client, store)
    for call in (manager.refresh, manager.get_token):
        with pytest.raises(NoGrantError) as caught:
            await call(user=USER)
        assert str(caught.value) == "no token is stored for this user: sign in first"


async def test_a_401_for_a_replaced_token_refreshes_the_replacement_when_it_is_due(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, mock: MockWhop, recorder: Recorder
) -> None:
    manager = TokenManager(client, store, hooks=recorder.hooks)
    await manager.save(due(grant), user=USER)

    token = await manager.refresh(user=USER, rejected_access_token="an older access token")

    assert token.access_token != grant.access_token
    assert mock.stats.token_refresh == 1
    [(_, info)] = recorder.refreshed
    assert info.forced is True


async def test_a_401_then_a_provider_error_raises_rather_than_resend_the_rejected_token(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)  # valid for an hour, but the API said 401
    mock.fail_next("token", 503)

    with pytest.raises(ProviderError):
        await manager.refresh(user=USER, rejected_access_token=grant.access_token)
    assert await manager.access_token(user=USER) == grant.access_token  # the grant is kept


# -- sign_out ------------------------------------------------------------------------------


async def test_sign_out_that_loses_to_a_new_sign_in_reports_nothing_deleted(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, recorder: Recorder
) -> None:
    manager = TokenManager(client, store, hooks=recorder.hooks)
    await manager.save(grant, user=USER)
    newer = Token("at_other_device", refresh_token="rt_other_device")
    real_revoke = manager._revocations.revoke

    async def revoke_while_a_sign_in_lands(token: Token, *, reason: str) -> bool:
        await store.put(manager.key(user=USER), newer)
        return await real_revoke(token, reason=reason)

    manager._revocations.revoke = revoke_while_a_sign_in_lands  # type: ignore[method-assign]

    assert await manager.sign_out(user=USER) is False
    assert recorder.deleted == []


async def test_a_failed_revocation_on_sign_out_is_logged_with_its_reason(
    client: OAuthClient,
    store: MemoryTokenStore,
    grant: Token,
    mock: MockWhop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TokenManager(client, store)
    await manager.save(grant, user=USER)
    mock.fail_next("revoke", 400, {"error": "invalid_request"})

    assert await manager.sign_out(user=USER) is True
    assert "revoking a signed-out grant failed" in caplog.text
    no_token_in(caplog, grant)


# -- invalid_grant, a refused rotation, a lost write ---------------------------------------


async def test_a_refused_refresh_token_is_logged_with_tenant_and_user(
    client: OAuthClient,
    store: MemoryTokenStore,
    grant: Token,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TokenManager(client, store)
    await manager.save(expired(grant), user=USER, tenant=TENANT)
    await client.revoke(grant)
    caplog.set_level(logging.INFO, "whop_oauth.manager")

    with pytest.raises(InvalidGrantError):
        await manager.get_token(user=USER, tenant=TENANT)

    assert messages(caplog) == [
        (logging.INFO, f"refresh token refused for tenant={TENANT} user={USER}")
    ]
    no_token_in(caplog, grant)


class Spy:
    """The real client; ``during`` runs while a refresh answer is on the wire."""

    def __init__(self, client: OAuthClient, during: Any) -> None:
        self._client, self._during = client, during

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def refresh(self, token: Token, **options: Any) -> Token:
        fresh = await self._client.refresh(token, **options)
        await self._during()
        return fresh


async def test_a_401_refresh_refused_while_a_caller_cached_the_old_token_forgets_it(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, mock: MockWhop
) -> None:
    manager: TokenManager

    async def refused(token: Token, **options: Any) -> Token:
        assert await manager.access_token(user=USER) == grant.access_token  # cached again
        raise InvalidGrantError("invalid_grant", "refresh token revoked")

    spy = Spy(client, None)
    spy.refresh = refused  # type: ignore[method-assign]
    manager = TokenManager(spy, store)  # type: ignore[arg-type]
    await manager.save(grant, user=USER)

    with pytest.raises(InvalidGrantError):
        await manager.refresh(user=USER, rejected_access_token=grant.access_token)
    with pytest.raises(NoGrantError):
        await manager.access_token(user=USER)


async def test_a_refresh_answered_for_another_user_is_reported_deleted_revoked_and_logged(
    client: OAuthClient,
    store: MemoryTokenStore,
    grant: Token,
    mock: MockWhop,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TokenManager(client, store, hooks=recorder.hooks)
    await manager.save(expired(grant), user=USER, tenant=TENANT)
    mock.override_id_token_claims(sub="user_someone_else")
    mock.fail_next("revoke", 400, {"error": "invalid_request"})  # the foreign grant's revocation

    with pytest.raises(IdTokenError):
        await manager.get_token(user=USER, tenant=TENANT)

    key = manager.key(user=USER, tenant=TENANT)
    [(failed_key, failure)] = recorder.failed
    assert (failed_key, failure.error_type) == (key, IdTokenError)
    assert recorder.deleted == [(key, "invalid_grant")]
    assert (
        logging.WARNING,
        "a refresh answered with another user's id_token; the grant is ended",
    ) in messages(caplog)
    assert "revoking a foreign-id-token grant failed" in caplog.text
    no_token_in(caplog, grant)


async def test_a_lost_write_is_logged_and_its_revocation_named(
    client: OAuthClient,
    mock_http: httpx.AsyncClient,
    store: MemoryTokenStore,
    mock: MockWhop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = client.token_key(USER, TENANT)
    newer = await sign_in(client, mock_http)

    async def sign_in_lands() -> None:
        await store.put(key, newer)
        mock.fail_next("revoke", 400, {"error": "invalid_request"})

    manager = TokenManager(Spy(client, sign_in_lands), store)  # type: ignore[arg-type]
    await manager.save(expired(await sign_in(client, mock_http)), user=USER, tenant=TENANT)

    assert await manager.get_token(user=USER, tenant=TENANT) == newer
    assert (
        logging.WARNING,
        f"a refreshed token lost a conditional write for tenant={TENANT}",
    ) in messages(caplog)
    assert "revoking a lost-write grant failed" in caplog.text
    no_token_in(caplog, newer)


async def test_a_refresh_whose_lease_was_taken_over_is_fenced_and_revoked(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: MemoryTokenStore, mock: MockWhop
) -> None:
    key = client.token_key(USER)
    old = expired(await sign_in(client, mock_http))
    answers: list[Token] = []

    async def lease_taken_over() -> None:
        # This worker froze past its lease; another took the lock (and wrote nothing yet).
        store._leases.pop(key)
        assert await store.acquire_lease(key, "another-worker", 60) > 0

    spy = Spy(client, lease_taken_over)
    real_refresh = spy.refresh

    async def refresh(token: Token, **options: Any) -> Token:
        answers.append(await real_refresh(token, **options))
        return answers[-1]

    spy.refresh = refresh  # type: ignore[method-assign]
    manager = TokenManager(spy, store)  # type: ignore[arg-type]
    await manager.save(old, user=USER)

    assert await manager.get_token(user=USER) == old  # the other worker decides
    assert (await store.get(key)).token == old  # type: ignore[union-attr]
    assert mock.is_revoked(answers[0].refresh_token)  # type: ignore[arg-type]


# -- transient failures: the back-off memory, the write's retries, logs ---------------------


async def test_a_transient_failure_is_logged_with_tenant_user_and_error_type(
    client: OAuthClient,
    store: MemoryTokenStore,
    grant: Token,
    mock: MockWhop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TokenManager(client, store)
    await manager.save(due(grant), user=USER, tenant=TENANT)
    mock.fail_next("token", 503)

    assert await manager.access_token(user=USER, tenant=TENANT) == grant.access_token
    assert messages(caplog) == [
        (logging.WARNING, f"token refresh failed for tenant={TENANT} user={USER}: ProviderError")
    ]


async def test_the_back_off_memory_is_pruned_of_expired_pauses_past_ten_thousand_keys(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    await manager.save(due(grant), user=USER)
    key = manager.key(user=USER)
    past, future = time.monotonic() - 1, time.monotonic() + 600
    others = {manager.key(user=f"user_{n}"): past for n in range(9_999)}

    manager._quiet_until = dict(others)
    mock.fail_next("token", 503)
    await manager.get_token(user=USER)
    assert len(manager._quiet_until) == 10_000  # not over the bound: nothing pruned

    manager._quiet_until = {**others, manager.key(user="user_live"): future}
    mock.fail_next("token", 503)
    await manager.get_token(user=USER)
    assert set(manager._quiet_until) == {key, manager.key(user="user_live")}


class FailingPuts(MemoryTokenStore):
    """Versioned writes (a refresh's) fail like an unreachable Redis."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def put(self, key: TokenKey, token: Token, **options: Any) -> StoredToken:
        if options.get("expected_version") is None:
            return await super().put(key, token, **options)
        self.attempts += 1
        raise TokenStoreError("Redis token store: ConnectionError")


async def test_a_write_that_keeps_failing_is_retried_within_the_deadline_then_raised(
    mock: MockWhop, mock_http: httpx.AsyncClient, grant: Token, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(mock.issuer, mock_http, max_retries=0, timeout=1.0, deadline=1.0)
    store = FailingPuts()
    manager = TokenManager(client, store)
    await manager.save(expired(grant), user=USER, tenant=TENANT)

    started = time.monotonic()
    with pytest.raises(TokenStoreError):
        await manager.get_token(user=USER, tenant=TENANT)

    assert time.monotonic() - started < 1.0
    assert store.attempts >= 3
    assert (
        logging.WARNING,
        f"a rotated grant could not be stored for tenant={TENANT}: TokenStoreError",
    ) in messages(caplog)


# -- provider origins -----------------------------------------------------------------------


def test_before_discovery_only_the_issuers_origin_may_get_tokens(store: MemoryTokenStore) -> None:
    client = OAuthClient(
        client_id="app_1", redirect_uri="https://app.example/cb", provider="https://id.example/t"
    )
    assert TokenManager(client, store).provider_origins() == {parse_origin("https://id.example")}


class SwitchingClient:
    """A client whose metadata document is replaced (a reload after discovery)."""

    issuer, client_id, deadline = "https://id.example", "app_1", 5.0

    def __init__(self) -> None:
        self.metadata = dataclasses.replace(
            whop_metadata("https://id.example"), api_base_url="https://api-one.example/v1"
        )


def test_the_provider_origins_follow_a_new_metadata_document(store: MemoryTokenStore) -> None:
    client = SwitchingClient()
    manager = TokenManager(client, store)  # type: ignore[arg-type]
    first = manager.provider_origins()
    assert parse_origin("https://api-one.example") in first
    assert manager.provider_origins() is first  # the same document: worked out once

    client.metadata = dataclasses.replace(
        client.metadata, api_base_url="https://api-two.example/v1"
    )
    second = manager.provider_origins()
    assert parse_origin("https://api-two.example") in second
    assert parse_origin("https://api-one.example") not in second


# -- an id_token failure before any rotation, and what a success resets ----------------------


class IdTokenRefused:
    """A client whose refresh fails its id_token check before anything rotated."""

    def __init__(self, client: OAuthClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def refresh(self, token: Token, **options: Any) -> Token:
        raise IdTokenError("the id_token could not be checked")


async def test_an_id_token_failure_without_rotation_keeps_the_grant_like_a_transient_one(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, recorder: Recorder
) -> None:
    manager = TokenManager(IdTokenRefused(client), store, hooks=recorder.hooks)  # type: ignore[arg-type]
    await manager.save(due(grant), user=USER)
    key = manager.key(user=USER)

    assert await manager.access_token(user=USER) == grant.access_token  # still valid: served
    [(failed_key, failure)] = recorder.failed
    assert (failed_key, failure.error_type) == (key, IdTokenError)
    assert recorder.deleted == []
    with pytest.raises(IdTokenError):  # after a 401, the rejected token is not served
        await manager.refresh(user=USER, rejected_access_token=grant.access_token)
    assert (await store.get(key)).token.refresh_token == grant.refresh_token  # type: ignore[union-attr]


async def test_a_successful_refresh_ends_the_back_off_of_an_earlier_failure(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, mock: MockWhop
) -> None:
    manager = TokenManager(client, store, cache_ttl=0)
    await manager.save(due(grant), user=USER)
    mock.fail_next("token", 503)
    assert await manager.access_token(user=USER) == grant.access_token  # failed: backs off
    fresh = await manager.refresh(user=USER)  # a forced refresh goes through

    await store.put(manager.key(user=USER), due(fresh))  # due again, well within the back-off
    assert await manager.access_token(user=USER) != fresh.access_token
    assert mock.stats.token_refresh == 2


async def test_a_refreshed_token_is_cached_for_the_next_calls(
    client: OAuthClient, grant: Token, caplog: pytest.LogCaptureFixture
) -> None:
    reads: list[TokenKey] = []

    class CountingReads(MemoryTokenStore):
        async def get(self, key: TokenKey) -> StoredToken | None:
            reads.append(key)
            return await super().get(key)

    manager = TokenManager(client, CountingReads())
    await manager.save(expired(grant), user=USER, tenant=TENANT)
    caplog.set_level(logging.DEBUG, "whop_oauth.manager")

    fresh = await manager.get_token(user=USER, tenant=TENANT)
    reads.clear()
    assert await manager.get_token(user=USER, tenant=TENANT) == fresh
    assert reads == []
    assert messages(caplog) == [
        (logging.DEBUG, f"refreshed a token for tenant={TENANT} user={USER}")
    ]
    no_token_in(caplog, grant, fresh)


async def test_deleting_an_undecryptable_grant_is_logged_with_its_tenant(
    client: OAuthClient,
    grant: Token,
    tmp_path: Path,
    open_stores: StoreFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    await TokenManager(client, await open_stores(url)).save(grant, user=USER, tenant=TENANT)
    rekeyed = await open_stores(url, encryption_keys=[generate_encryption_key()])
    recorder = Recorder()
    manager = TokenManager(client, rekeyed, undecryptable="delete", hooks=recorder.hooks)

    with pytest.raises(NoGrantError):
        await manager.get_token(user=USER, tenant=TENANT)
    assert recorder.deleted == [(manager.key(user=USER, tenant=TENANT), "undecryptable")]
    assert messages(caplog) == [
        (logging.WARNING, f"deleted an undecryptable grant for tenant={TENANT}")
    ]
    assert await (await open_stores(url)).get(manager.key(user=USER, tenant=TENANT)) is None


async def test_a_lock_timeout_is_reported_to_the_failure_hook_with_its_key(
    client: OAuthClient, store: MemoryTokenStore, grant: Token, recorder: Recorder
) -> None:
    manager = TokenManager(client, store, lock_timeout=0.05, hooks=recorder.hooks)
    await manager.save(expired(grant), user=USER, tenant=TENANT)
    key = manager.key(user=USER, tenant=TENANT)
    await store.acquire_lease(key, "a-stuck-worker", 60)

    with pytest.raises(LockTimeout):
        await manager.get_token(user=USER, tenant=TENANT)
    assert [(k, failure.error_type) for k, failure in recorder.failed] == [(key, LockTimeout)]
