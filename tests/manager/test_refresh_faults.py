"""Faults during refresh, on a real loopback connection: the stored grant is left as it was
and works afterwards."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in
from store_fixtures import StoreFactory

from whop_oauth import (
    InvalidResponseError,
    RateLimitedError,
    ServerUnavailableError,
    TokenManager,
    TransportError,
)
from whop_oauth.testing import MockWhop

Inject = Callable[[MockWhop], None]

FAULTS: dict[str, tuple[Inject, type[Exception]]] = {
    "timeout": (lambda p: p.drop_next("token", "stall"), TransportError),
    "500": (
        lambda p: p.fail_next("token", 500, b"<h1>Internal Error</h1>"),
        ServerUnavailableError,
    ),
    "429 with Retry-After": (
        lambda p: p.fail_next("token", 429, headers={"Retry-After": "7"}),
        RateLimitedError,
    ),
    "connection reset": (lambda p: p.drop_next("token", "reset"), TransportError),
    "truncated JSON": (
        lambda p: p.fail_next("token", 200, b'{"access_token": "at", "token_ty'),
        InvalidResponseError,
    ),
}


@pytest.mark.parametrize("expired_first", [True, False], ids=["expired", "still valid"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_fault_during_refresh_leaves_the_grant_unchanged_and_usable(
    fault: str,
    expired_first: bool,
    tmp_path: Path,
    open_stores: StoreFactory,
    provider: MockWhop,
    http: httpx.AsyncClient,
) -> None:
    inject, error_type = FAULTS[fault]
    client = make_client(provider.issuer, http, timeout=0.3, max_retries=0)
    store = await open_stores(f"sqlite:///{tmp_path}/tokens.db")
    manager = TokenManager(client, store, failure_backoff=0)
    grant = await sign_in(client, http)
    now = time.time()
    start = (  # "still valid": an hour-long token with 20 s left, inside the 60 s leeway
        expired(grant)
        if expired_first
        else dataclasses.replace(grant, expires_at=now + 20, issued_at=now - 3580)
    )
    await manager.save(start, user=USER)
    before = await store.get(manager.key(user=USER))

    inject(provider)
    if expired_first:
        with pytest.raises(error_type):
            await manager.get_token(user=USER)
    else:  # inside the leeway but not expired: the old token is still served
        assert (await manager.get_token(user=USER)).access_token == grant.access_token

    assert await store.get(manager.key(user=USER)) == before
    assert provider.stats.token_refresh == 0
    fresh = await manager.refresh(user=USER)  # forced: past any back-off a 429 asked for
    assert fresh.refresh_token != grant.refresh_token
    assert (await client.userinfo(fresh))["sub"] == USER
    stats = provider.stats
    assert (stats.token_refresh, stats.invalid_grant, stats.refresh_reuse_detected) == (1, 0, 0)
