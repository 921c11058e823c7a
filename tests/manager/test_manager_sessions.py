"""TokenManager's grant rules on every backend: one live grant per user, revoked with the
last session; and the SQLite file's move to schema 3."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from app_driver import USER, sign_in
from store_fixtures import BACKENDS, StoreFactory

from whop_oauth import (
    OAuthClient,
    ServerUnavailableError,
    Token,
    TokenKey,
    TokenManager,
    open_store,
)
from whop_oauth._revocations import Revocations
from whop_oauth.stores import (
    MemoryTokenStore,
    SessionRecord,
    SessionStore,
    TokenStore,
    session_hash,
)
from whop_oauth.testing import MockWhop


def live_grants(mock: MockWhop) -> int:
    return sum(not grant.revoked for grant in mock.grants)


def needs_sessions(store: TokenStore) -> SessionStore:
    if not isinstance(store, SessionStore):  # runs by itself once the backend implements it
        pytest.skip(f"{type(store).__name__} does not implement SessionStore yet")
    return store


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_concurrent_sign_ins_of_one_user_leave_only_the_stored_grant_live(
    client: OAuthClient, mock: MockWhop, mock_http: httpx.AsyncClient, store: TokenStore
) -> None:
    manager = TokenManager(client, store)
    grants = [await sign_in(client, mock_http) for _ in range(5)]

    await asyncio.gather(*(manager.save(grant, user=USER) for grant in grants))

    held = await store.get(manager.key(user=USER))
    assert held is not None
    assert live_grants(mock) == 1
    assert not mock.is_revoked(str(held.token.refresh_token))


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_the_grant_goes_with_the_last_live_session_seen_from_any_handle(
    client: OAuthClient,
    mock: MockWhop,
    mock_http: httpx.AsyncClient,
    store: TokenStore,
    store_url: str,
    open_stores: StoreFactory,
) -> None:
    needs_sessions(store)
    other = store if store_url == "memory://" else await open_stores(store_url)
    here, there = TokenManager(client, store), TokenManager(client, other)
    key = here.key(user=USER)
    first, second = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    await here.sessions.create(first, key, lifetime=3600)
    await there.sessions.create(second, key, lifetime=3600)
    await here.save(await sign_in(client, mock_http), user=USER)

    assert await here.end_session(first) is True
    assert live_grants(mock) == 1  # the session on the other handle still needs it

    assert await there.end_session(second) is True
    assert live_grants(mock) == 0
    assert await store.get(key) is None
    assert await there.end_session(second) is False


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_an_expired_session_does_not_keep_a_grant_alive(
    client: OAuthClient, mock: MockWhop, mock_http: httpx.AsyncClient, store: TokenStore
) -> None:
    manager = TokenManager(client, store)
    key = manager.key(user=USER)
    now = time.time()
    stale = SessionRecord(key, now - 7200, now - 1)
    await needs_sessions(store).create_session(session_hash("stale"), stale)
    session = secrets.token_urlsafe(16)
    await manager.sessions.create(session, key, lifetime=3600)
    await manager.save(await sign_in(client, mock_http), user=USER)

    await manager.end_session(session)

    assert live_grants(mock) == 0


async def test_a_revocation_that_keeps_failing_waits_and_is_sent_on_revoke_pending(
    client: OAuthClient, mock: MockWhop, mock_http: httpx.AsyncClient
) -> None:
    manager = TokenManager(client, MemoryTokenStore())
    first: Token = await sign_in(client, mock_http)
    await manager.save(first, user=USER)
    mock.fail_next("revoke", 503, times=2)
    await manager.save(await sign_in(client, mock_http), user=USER)
    assert await manager.revoke_pending() == 1  # failed again: still waiting
    assert not mock.is_revoked(str(first.refresh_token))

    assert await manager.revoke_pending() == 0

    assert mock.is_revoked(str(first.refresh_token))
    assert live_grants(mock) == 1


async def test_a_schema_2_sqlite_file_gains_the_session_tables_and_keeps_its_grants(
    tmp_path: Path, open_stores: StoreFactory, keys: list[str]
) -> None:
    path = tmp_path / "tokens.db"
    key = TokenKey("biz_1", "user_1", "https://api.whop.com", "app_1")
    old = open_store(f"sqlite:///{path}", encryption_keys=keys)
    await old.put(key, Token(access_token="at", refresh_token="rt", expires_at=time.time() + 60))
    await old.aclose()
    with sqlite3.connect(path) as conn:  # what whop_oauth with schema 2 left behind
        conn.execute("DROP TABLE whop_oauth_sessions")
        conn.execute("DROP TABLE whop_oauth_flows")
        conn.execute("UPDATE whop_oauth_schema SET version = 2")

    store = await open_stores(f"sqlite:///{path}")

    stored = await store.get(key)
    assert stored is not None
    assert stored.token.refresh_token == "rt"
    assert isinstance(store, SessionStore)
    await store.create_session(session_hash("s"), SessionRecord(key, 0.0, time.time() + 60))
    assert await store.count_live_sessions(key) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM whop_oauth_schema").fetchone() == (3,)


class SlowRevoker:
    """A client whose revocations first fail, then succeed after a pause."""

    def __init__(self) -> None:
        self.failing = True
        self.revoked: list[str] = []

    async def revoke(self, token: Token) -> None:
        await asyncio.sleep(0.01)  # an await, as a real request has, between queue steps
        if self.failing:
            raise ServerUnavailableError("revocation: HTTP 503")
        self.revoked.append(str(token.refresh_token))


async def test_concurrent_revocations_share_the_waiting_queue_without_crashing() -> None:
    client = SlowRevoker()
    revocations = Revocations(client, budget=1.0)  # type: ignore[arg-type]
    for n in range(3):
        await revocations.revoke(Token(f"at_{n}", refresh_token=f"rt_{n}"), reason="test")
    assert len(revocations) == 3
    client.failing = False

    results = await asyncio.gather(
        revocations.revoke(Token("at_a", refresh_token="rt_a"), reason="test"),
        revocations.revoke(Token("at_b", refresh_token="rt_b"), reason="test"),
    )

    assert results == [True, True]
    assert len(revocations) == 0
    assert sorted(client.revoked) == ["rt_0", "rt_1", "rt_2", "rt_a", "rt_b"]
