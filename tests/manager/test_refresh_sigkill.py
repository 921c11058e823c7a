"""A worker killed with SIGKILL while holding the refresh lock blocks others only until its
lease runs out; the grant survives and the next worker refreshes it."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in
from store_fixtures import SHARED_BACKENDS, StoreFactory, Workers

from whop_oauth import TokenManager
from whop_oauth.testing import MockWhop

LEASE = 2.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_a_killed_lock_holder_delays_the_next_refresh_only_until_its_lease_ends(
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
    manager = TokenManager(client, await open_stores(url))
    await manager.save(expired(grant), user=USER)
    group = Workers(2, url, provider.issuer, keys, callers=10, lease=LEASE)
    workers.append(group)
    holder, successor = group.processes

    # The holder takes the lock and sends its refresh, which the provider holds unanswered.
    provider.drop_next("token", "stall")
    group.go([holder])
    assert await asyncio.to_thread(provider.wait_for_fault, 10)
    os.kill(holder.pid, signal.SIGKILL)
    group.go([successor])
    [result] = await asyncio.to_thread(group.results, [successor])
    waited = max(result.waits)  # from the start signal, just after the kill, to the token

    assert result.errors == {}
    assert sum(result.tokens.values()) == 10
    assert grant.access_token not in result.tokens
    assert 0.5 < waited < LEASE + 1.5  # it did wait for the lease, and no longer than it
    stats = provider.stats
    assert (stats.token_refresh, stats.invalid_grant, stats.refresh_reuse_detected) == (1, 0, 0)
    # Nothing corrupted: the stored grant is the successor's, and it refreshes again.
    stored = await manager.get_token(user=USER)
    assert set(result.tokens) == {stored.access_token}
    again = await manager.refresh(user=USER, rejected_access_token=stored.access_token)
    assert (await client.userinfo(again))["sub"] == USER
