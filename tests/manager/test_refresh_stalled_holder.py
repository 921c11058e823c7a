"""A lock holder frozen past its lease (SIGSTOP) sends nothing when it wakes up: the
grant survives at a provider that revokes it when a spent refresh token comes back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in
from store_fixtures import StoreFactory

from whop_oauth import TokenManager
from whop_oauth.testing import MockWhop

LEASE = 2.0
WORKER = Path(__file__).with_name("lease_worker.py")


def start(url: str, issuer: str, keys: list[str], mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WHOP_TEST_KEYS": ",".join(keys)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, issuer, str(LEASE), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def outcome(process: subprocess.Popen[str]) -> dict[str, str]:
    out, _ = process.communicate(timeout=30)
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
@pytest.mark.parametrize("taken_over", [True, False], ids=["taken over", "lapsed only"])
async def test_a_holder_frozen_past_its_lease_sends_nothing_and_the_grant_survives(
    taken_over: bool,
    shared_url: str,
    keys: list[str],
    open_stores: StoreFactory,
    provider: MockWhop,
    http: httpx.AsyncClient,
) -> None:
    client = make_client(provider.issuer, http)
    manager = TokenManager(client, await open_stores(shared_url))
    grant = await sign_in(client, http)
    await manager.save(expired(grant), user=USER)

    frozen = start(shared_url, provider.issuer, keys, "stall")
    try:
        assert frozen.stdout is not None
        line = await asyncio.to_thread(frozen.stdout.readline)
        assert line.strip() == "holding"
        os.kill(frozen.pid, signal.SIGSTOP)  # holds the lock and the old refresh token
        await asyncio.sleep(LEASE + 0.3)
        if taken_over:  # another worker takes the lapsed lock and refreshes
            other = await asyncio.to_thread(
                outcome, start(shared_url, provider.issuer, keys, "plain")
            )
            assert "token" in other, other
            assert provider.stats.token_refresh == 1
        os.kill(frozen.pid, signal.SIGCONT)
        woken = await asyncio.to_thread(outcome, frozen)
    finally:
        if frozen.poll() is None:
            os.kill(frozen.pid, signal.SIGCONT)
            frozen.kill()

    stats = provider.stats
    assert (stats.token_refresh, stats.refresh_reuse_detected, stats.invalid_grant) == (1, 0, 0)
    stored = await manager.get_token(user=USER)
    assert "token" in woken, woken
    if taken_over:
        assert woken == other  # the woken holder used what the new holder stored
    assert (await client.userinfo(stored))["sub"] == USER  # the grant is alive
    again = await manager.refresh(user=USER, rejected_access_token=stored.access_token)
    assert (await client.userinfo(again))["sub"] == USER
