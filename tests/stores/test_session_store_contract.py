"""The SessionStore contract, run against every backend (memory, SQLite, a real Redis and
a real PostgreSQL)."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
import redis
from stores_support import BACKENDS, StoreFactory

from whop_oauth import TokenKey
from whop_oauth.stores import (
    MemoryTokenStore,
    SessionRecord,
    SessionStore,
    SQLiteTokenStore,
    TokenStore,
    flow_hash,
    session_hash,
)

pytestmark = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)

ISSUER = "https://api.whop.com"
ALICE = TokenKey("biz_1", "user_alice", ISSUER, "app_1")
BOB = TokenKey("biz_1", "user_bob", ISSUER, "app_1")
ALICE_ELSEWHERE = TokenKey("biz_2", "user_alice", ISSUER, "app_1")


def sessions(store: TokenStore) -> SessionStore:
    if not isinstance(store, SessionStore):  # runs by itself once the backend implements it
        pytest.skip(f"{type(store).__name__} does not implement SessionStore yet")
    return store


def record(key: TokenKey = ALICE, lifetime: float = 3600.0) -> SessionRecord:
    now = time.time()
    return SessionRecord(key, now, now + lifetime)


def new_hash() -> str:
    return session_hash(secrets.token_urlsafe(16))


async def other_handle(store: TokenStore, store_url: str, open_stores: StoreFactory) -> TokenStore:
    """A second connection to the same storage (another process would have one)."""
    return store if store_url == "memory://" else await open_stores(store_url)


async def test_a_created_session_reads_back_equal_and_an_unknown_one_is_none(
    store: TokenStore,
) -> None:
    id_hash, written = new_hash(), record()
    await sessions(store).create_session(id_hash, written)
    assert await sessions(store).get_session(id_hash) == written
    assert await sessions(store).get_session(new_hash()) is None


async def test_a_deleted_session_reads_as_none_in_every_handle(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    other = sessions(await other_handle(store, store_url, open_stores))
    id_hash = new_hash()
    await sessions(store).create_session(id_hash, record())
    assert await other.get_session(id_hash) is not None

    assert await sessions(store).delete_session(id_hash) is True
    assert await sessions(store).delete_session(id_hash) is False
    assert await other.get_session(id_hash) is None
    assert await other.count_live_sessions(ALICE) == 0


async def test_an_expired_session_is_neither_read_nor_counted(store: TokenStore) -> None:
    id_hash = new_hash()
    await sessions(store).create_session(id_hash, record(lifetime=-1.0))
    assert await sessions(store).get_session(id_hash) is None
    assert await sessions(store).count_live_sessions(ALICE) == 0


async def test_live_sessions_are_counted_per_grant_key(store: TokenStore) -> None:
    for key in (ALICE, ALICE, BOB, ALICE_ELSEWHERE):
        await sessions(store).create_session(new_hash(), record(key))
    await sessions(store).create_session(new_hash(), record(ALICE, lifetime=-1.0))
    assert await sessions(store).count_live_sessions(ALICE) == 2
    assert await sessions(store).count_live_sessions(BOB) == 1
    assert await sessions(store).count_live_sessions(ALICE_ELSEWHERE) == 1


async def test_deleting_a_keys_sessions_leaves_every_other_key_alone(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    alice = [new_hash() for _ in range(3)]
    bob, elsewhere = new_hash(), new_hash()
    for id_hash in alice:
        await sessions(store).create_session(id_hash, record(ALICE))
    await sessions(store).create_session(bob, record(BOB))
    await sessions(store).create_session(elsewhere, record(ALICE_ELSEWHERE))

    other = sessions(await other_handle(store, store_url, open_stores))
    assert await other.delete_sessions_for(ALICE) == 3

    for id_hash in alice:
        assert await sessions(store).get_session(id_hash) is None
    assert await sessions(store).count_live_sessions(ALICE) == 0
    assert await sessions(store).get_session(bob) is not None
    assert await sessions(store).get_session(elsewhere) is not None
    assert await sessions(store).delete_sessions_for(ALICE) == 0


async def test_a_flow_is_claimed_once_across_handles_even_at_the_same_moment(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    other = sessions(await other_handle(store, store_url, open_stores))
    state = flow_hash(secrets.token_urlsafe(32))
    until = time.time() + 600

    claims = await asyncio.gather(
        *(sessions(store).claim_flow(state, until) for _ in range(10)),
        *(other.claim_flow(state, until) for _ in range(10)),
    )

    assert sorted(claims) == [False] * 19 + [True]
    assert await other.claim_flow(state, until) is False
    assert await other.claim_flow(flow_hash("another state"), until) is True


async def test_a_flow_whose_lifetime_is_over_cannot_be_claimed(store: TokenStore) -> None:
    assert await sessions(store).claim_flow(flow_hash("old"), time.time() - 1) is False


async def test_expired_sessions_and_spent_flows_are_cleaned_up(
    store: TokenStore, store_url: str, tmp_path: Path
) -> None:
    live, dead = new_hash(), new_hash()
    await sessions(store).create_session(live, record())
    await sessions(store).create_session(dead, record(lifetime=-1.0))
    await sessions(store).claim_flow(flow_hash("in progress"), time.time() + 600)

    if isinstance(store, MemoryTokenStore):
        store._spent_flows[flow_hash("spent")] = time.time() - 1  # claimed 10 minutes ago
        store.cleanup()
        remaining = set(store._session_rows), len(store._spent_flows)
    elif isinstance(store, SQLiteTokenStore):
        with sqlite3.connect(tmp_path / "tokens.db") as conn:  # claimed 10 minutes ago
            conn.execute("INSERT INTO whop_oauth_flows VALUES (?, ?)", ("x" * 64, time.time() - 1))
        await store.cleanup()
        with sqlite3.connect(tmp_path / "tokens.db") as conn:
            rows = conn.execute("SELECT id_hash FROM whop_oauth_sessions").fetchall()
            flows = conn.execute("SELECT COUNT(*) FROM whop_oauth_flows").fetchone()[0]
        remaining = {row[0] for row in rows}, flows
    elif store_url.startswith("redis"):  # every record and index has a TTL; none past is kept
        client = redis.Redis.from_url(store_url)
        names = {name.decode() for name in client.keys("whop_oauth:*")}
        assert all(0 < client.pttl(name) <= 3600_000 for name in names)
        client.close()
        sessions_left = {n.rsplit(":", 1)[1] for n in names if ":session:" in n}
        remaining = sessions_left, sum(":flow:" in n for n in names)
    elif store_url.startswith("postgresql"):
        with psycopg.connect(store_url, autocommit=True) as conn:  # claimed 10 minutes ago
            spent = ("x" * 64, time.time() - 1)
            conn.execute("INSERT INTO whop_oauth.flows VALUES (%s, %s)", spent)
            await store.cleanup()  # type: ignore[attr-defined]
            rows = conn.execute("SELECT id_hash FROM whop_oauth.sessions").fetchall()
            flows = conn.execute("SELECT count(*) FROM whop_oauth.flows").fetchone()
        remaining = {row[0] for row in rows}, flows[0] if flows else None
    else:
        pytest.skip("the raw contents are inspected for memory, SQLite, Redis and PostgreSQL")
    assert remaining == ({live}, 1)


async def test_the_store_keeps_only_hashes_of_session_ids_and_states(
    store: TokenStore, store_url: str, tmp_path: Path
) -> None:
    session_id, state = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    await sessions(store).create_session(session_hash(session_id), record())
    await sessions(store).claim_flow(flow_hash(state), time.time() + 600)
    if isinstance(store, MemoryTokenStore):
        raw = repr(store._session_rows).encode() + repr(store._spent_flows).encode()
    elif isinstance(store, SQLiteTokenStore):
        path = tmp_path / "tokens.db"
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    elif store_url.startswith("redis"):
        client = redis.Redis.from_url(store_url)
        raw = b" ".join(client.keys("*"))
        raw += b"".join(str(client.hgetall(n)).encode() for n in client.keys("*:session:*"))
        client.close()
    elif store_url.startswith("postgresql"):
        with psycopg.connect(store_url) as conn:
            rows = conn.execute(
                "SELECT s::text FROM whop_oauth.sessions s "
                "UNION ALL SELECT f::text FROM whop_oauth.flows f"
            ).fetchall()
        raw = " ".join(row[0] for row in rows).encode()
    else:
        pytest.skip("the raw contents are inspected for memory, SQLite, Redis and PostgreSQL")
    assert session_hash(session_id).encode() in raw  # the search does see the contents
    assert session_id.encode() not in raw
    assert state.encode() not in raw
