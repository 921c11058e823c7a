"""Once a refresh token has left, its answer is never thrown away: the provider has
rotated it, so a dropped answer is a lost grant at a provider with reuse detection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from stores_support import USER, expired, make_client, sign_in

from whop_oauth import TokenManager
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop


@pytest.fixture
def mock() -> MockWhop:  # type: ignore[override]
    return MockWhop()


@pytest.fixture
async def http(mock: MockWhop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=mock.transport()) as client:
        yield client


async def test_a_refresh_whose_id_token_keys_cannot_be_fetched_still_keeps_the_rotation(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    signed_in = await sign_in(make_client(mock.issuer, http), http)
    # A new worker: its JWKS cache is cold, and the JWKS endpoint is down.
    client = make_client(mock.issuer, http, max_retries=0)
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
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    client = make_client(mock.issuer, http, max_retries=0, timeout=2.0, deadline=2.0)
    manager = TokenManager(client, MemoryTokenStore(), lock_lease=3.0)
    signed_in = await sign_in(client, http)
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
