"""Refresh storms: many callers, one expired token, exactly one refresh — in one process or four."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in
from store_fixtures import BACKENDS, SHARED_BACKENDS, StoreFactory, Workers

from whop_oauth import OAuthClient, TokenManager
from whop_oauth.testing import MockWhop


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_a_thousand_concurrent_callers_share_one_refresh(
    store_url: str,
    open_stores: StoreFactory,
    client: OAuthClient,
    mock_http: httpx.AsyncClient,
    mock: MockWhop,
) -> None:
    manager = TokenManager(client, await open_stores(store_url))
    grant = await sign_in(client, mock_http)
    await manager.save(expired(grant), user=USER)
    before = mock.stats

    results = await asyncio.gather(
        *(manager.access_token(user=USER) for _ in range(1000)), return_exceptions=True
    )

    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert len(set(results)) == 1
    assert results[0] != grant.access_token
    stats = mock.stats
    assert stats.token_requests - before.token_requests == 1
    assert stats.token_refresh - before.token_refresh == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_four_processes_of_250_callers_share_one_refresh(
    shared_url: str,
    keys: list[str],
    open_stores: StoreFactory,
    provider: MockWhop,
    http: httpx.AsyncClient,
    workers: list[Workers],
) -> None:
    url = shared_url
    client = make_client(provider.issuer, http)
    grant = await sign_in(client, http)
    await TokenManager(client, await open_stores(url)).save(expired(grant), user=USER)
    group = Workers(4, url, provider.issuer, keys, callers=250)
    workers.append(group)
    before = provider.stats

    group.go()
    results = await asyncio.to_thread(group.results)

    tokens: Counter[str] = Counter()
    for result in results:
        assert result.errors == {}
        tokens.update(result.tokens)
    assert len(tokens) == 1
    assert sum(tokens.values()) == 1000
    assert grant.access_token not in tokens
    stats = provider.stats
    assert stats.token_refresh - before.token_refresh == 1
    assert stats.invalid_grant == stats.refresh_reuse_detected == 0
    # The grant the storm produced is the stored one, and the provider honours it.
    stored = await TokenManager(client, await open_stores(url)).get_token(user=USER)
    assert set(tokens) == {stored.access_token}
    assert (await client.userinfo(stored))["sub"] == USER
