"""Refresh storms and short-lived tokens against oidc-provider, which rotates refresh
tokens and revokes the whole grant when a spent one comes back. The provider's own
counters say how many refreshes it saw; introspection says whether the grant lives."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from independent_support import (
    CLIENTS,
    OidcServer,
    StormWorkers,
    fingerprint,
    make_client,
    sign_in,
)

from whop_oauth import TokenManager, open_store

USER = "user_storm"
TENANT = "biz_independent"


def _delta(server: OidcServer, before: dict[str, int]) -> dict[str, int]:
    after = server.stats()
    return {name: after[name] - before[name] for name in after}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_two_processes_of_twenty_callers_refresh_an_expired_token_once(
    oidc_5s: OidcServer,
    shared_url: str,
    keys: list[str],
    http: httpx.AsyncClient,
    workers: list[StormWorkers],
) -> None:
    client = make_client(oidc_5s.issuer, http)
    store = open_store(shared_url, encryption_keys=keys)
    try:
        token = await sign_in(client)
        await TokenManager(client, store).save(token, user=USER, tenant=TENANT)
        group = StormWorkers(
            2,
            {
                "store_url": shared_url,
                "keys": keys,
                "issuer": oidc_5s.issuer,
                "client_id": client.client_id,
                "client_secret": CLIENTS[client.client_id][0],
                "user": USER,
                "tenant": TENANT,
                "callers": 20,
            },
        )
        workers.append(group)
        await asyncio.to_thread(group.wait_ready)
        assert token.expires_at is not None
        # A real expiry, at the provider too: the workers started meanwhile.
        await asyncio.sleep(max(0.0, token.expires_at - time.time()) + 0.2)
        assert (await client.introspect(token.access_token))["active"] is False
        before = oidc_5s.stats()

        group.go()
        results = await asyncio.to_thread(group.results)

        delta = _delta(oidc_5s, before)
        tokens: Counter[str] = Counter()
        for result in results:
            assert result.errors == {}
            tokens.update(result.tokens)
        assert delta["refresh_token"] == 1, delta
        assert delta["reuse_detected"] == delta["grants_revoked"] == 0, delta
        stored = await store.get(client.token_key(USER, TENANT))
        assert stored is not None
        assert stored.token.refresh_token is not None
        assert tokens == {fingerprint(stored.token.access_token): 40}
        introspected = await client.introspect(
            stored.token.refresh_token, token_type_hint="refresh_token"
        )
        assert introspected["active"] is True  # the grant survived the storm
    finally:
        await store.aclose()


async def test_ten_second_tokens_are_not_refreshed_in_the_two_seconds_after_a_refresh(
    oidc_10s: OidcServer, http: httpx.AsyncClient
) -> None:
    # Issue 8, item 3: with a refresh margin longer than the token's whole life, every
    # call would find a fresh token 'due' and refresh it again.
    client = make_client(oidc_10s.issuer, http)
    manager = TokenManager(client, open_store("memory://"))
    await manager.save(await sign_in(client), user=USER, tenant=TENANT)
    refreshed = await manager.refresh(user=USER, tenant=TENANT)
    before = oidc_10s.stats()

    seen = []
    for _ in range(20):  # one call every 0.1 s, as an app's requests would come
        seen.append(await manager.access_token(user=USER, tenant=TENANT))
        await asyncio.sleep(0.1)

    assert _delta(oidc_10s, before)["refresh_token"] == 0
    assert set(seen) == {refreshed.access_token}
