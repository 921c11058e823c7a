"""Once a refresh token has left, its answer is never thrown away: the provider has
rotated it, so a dropped answer is a lost grant at a provider with reuse detection."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in

from whop_oauth import IdTokenError, Token, TokenKey, TokenManager, TokenStoreError
from whop_oauth.stores import MemoryTokenStore, StoredToken
from whop_oauth.testing import MockWhop


async def test_a_refresh_whose_id_token_keys_cannot_be_fetched_still_keeps_the_rotation(
    mock: MockWhop, mock_http: httpx.AsyncClient
) -> None:
    signed_in = await sign_in(make_client(mock.issuer, mock_http), mock_http)
    # A new worker: its JWKS cache is cold, and the JWKS endpoint is down.
    client = make_client(mock.issuer, mock_http, max_retries=0)
    manager = TokenManager(client, MemoryTokenStore())
    await manager.save(expired(signed_in), user=USER)
    mock.fail_next("jwks", 503, times=5)

    fresh = await manager.get_token(user=USER)

    assert fresh.refresh_token != signed_in.refresh_token  # the rotation was stored
    assert fresh.subject == signed_in.subject  # the sign-in's claims stand
    again = await manager.refresh(user=USER, rejected_access_token=fresh.access_token)
    stats = mock.stats
    assert (stats.token_refresh, stats.refresh_reuse_detected) == (2, 0)
    assert (await client.userinfo(again))["sub"] == USER


async def test_a_refresh_answer_slower_than_half_the_lease_is_awaited_and_stored(
    mock: MockWhop, mock_http: httpx.AsyncClient
) -> None:
    client = make_client(mock.issuer, mock_http, max_retries=0, timeout=2.0, deadline=2.0)
    manager = TokenManager(client, MemoryTokenStore(), lock_lease=3.0)
    signed_in = await sign_in(client, mock_http)
    await manager.save(expired(signed_in), user=USER)
    mock.delay_next("token", 1.7)  # within the request's deadline, past half the lease

    fresh = await manager.get_token(user=USER)

    assert fresh.refresh_token != signed_in.refresh_token
    again = await manager.refresh(user=USER, rejected_access_token=fresh.access_token)
    assert (mock.stats.token_refresh, mock.stats.refresh_reuse_detected) == (2, 0)
    assert (await client.userinfo(again))["sub"] == USER


def test_a_lease_no_longer_than_the_clients_deadline_is_refused() -> None:
    client = make_client("https://issuer.test", httpx.AsyncClient(), timeout=5.0)
    with pytest.raises(Exception, match="must be longer than the client's deadline"):
        TokenManager(client, MemoryTokenStore(), lock_lease=10.0)


async def test_a_refresh_id_token_failing_its_time_checks_keeps_the_rotation() -> None:
    skew = [0.0]
    mock = MockWhop(clock=lambda: time.time() + skew[0])
    async with httpx.AsyncClient(transport=mock.transport()) as http:
        client = make_client(mock.issuer, http, max_retries=0)
        manager = TokenManager(client, MemoryTokenStore())
        signed_in = await sign_in(client, http)
        await manager.save(expired(signed_in), user=USER)
        skew[0] = 600.0  # the provider's clock runs ten minutes ahead: iat is "future"

        fresh = await manager.get_token(user=USER)

        assert fresh.refresh_token != signed_in.refresh_token  # stored, not dropped
        assert fresh.subject == signed_in.subject
        again = await manager.refresh(user=USER, rejected_access_token=fresh.access_token)
        assert (mock.stats.token_refresh, mock.stats.refresh_reuse_detected) == (2, 0)
        assert again.refresh_token != fresh.refresh_token


async def test_a_refresh_answered_for_another_user_ends_the_grant_and_revokes_it() -> None:
    mock = MockWhop()
    async with httpx.AsyncClient(transport=mock.transport()) as http:
        client = make_client(mock.issuer, http, max_retries=0)
        store = MemoryTokenStore()
        manager = TokenManager(client, store)
        signed_in = await sign_in(client, http)
        await manager.save(expired(signed_in), user=USER)
        mock.override_id_token_claims(sub="user_someone_else")  # the refresh answer's id_token

        with pytest.raises(IdTokenError, match="another user") as caught:
            await manager.get_token(user=USER)

        assert "user_someone_else" not in str(caught.value)
        assert await store.get(manager.key(user=USER)) is None  # nobody presents it again
        assert all(grant.revoked for grant in mock.grants)  # the foreign answer is revoked
        assert mock.stats.refresh_reuse_detected == 0


class FlakyPuts(MemoryTokenStore):
    """A store whose next ``failures`` writes fail as a Redis blip would."""

    failures = 0

    async def put(self, key: TokenKey, token: Token, **options: Any) -> StoredToken:
        if self.failures:
            self.failures -= 1
            raise TokenStoreError("Redis token store: ConnectionError")
        return await super().put(key, token, **options)


async def test_a_store_blip_on_the_write_after_a_refresh_is_retried_not_dropped(
    mock: MockWhop, mock_http: httpx.AsyncClient
) -> None:
    client = make_client(mock.issuer, mock_http, max_retries=0)
    store = FlakyPuts()
    manager = TokenManager(client, store)
    signed_in = await sign_in(client, mock_http)
    await manager.save(expired(signed_in), user=USER)
    store.failures = 2

    fresh = await manager.get_token(user=USER)

    stored = await store.get(manager.key(user=USER))
    assert stored is not None
    assert stored.token.refresh_token == fresh.refresh_token != signed_in.refresh_token
    await manager.refresh(user=USER, rejected_access_token=fresh.access_token)
    assert (mock.stats.token_refresh, mock.stats.refresh_reuse_detected) == (2, 0)
