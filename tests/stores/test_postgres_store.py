"""What only the PostgreSQL store has to prove, against a real server: its schema, its
errors, and that neither a lost connection nor a restart breaks a grant."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import httpx
import psycopg
import pytest
from postgres_server import PASSWORD, PostgresServer, free_port
from stores_support import (
    USER,
    StoreFactory,
    Workers,
    expired,
    make_client,
    sign_in,
)

from whop_oauth import (
    ConfigurationError,
    DecryptionError,
    InvalidTokenKey,
    LockTimeout,
    StaleWriteError,
    Token,
    TokenKey,
    TokenManager,
    TokenStoreError,
    open_store,
)
from whop_oauth.stores import PostgresTokenStore
from whop_oauth.stores._postgres_schema import SCHEMA_VERSION
from whop_oauth.testing import MockWhop

pytestmark = pytest.mark.postgres

KEY = TokenKey("biz_1", "user_1", "https://issuer.test", "app_1")


async def sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    """One statement on a connection of its own (the test's view of the database)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(query, params or None)  # type: ignore[arg-type]
        return await cursor.fetchall() if cursor.description else []


async def test_many_workers_opening_a_new_database_at_once_create_one_schema(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    stores = [await open_stores(postgres_url) for _ in range(12)]
    assert await asyncio.gather(*(store.get(KEY) for store in stores)) == [None] * 12
    assert await sql(postgres_url, "SELECT id, version FROM whop_oauth.schema_version") == [
        (1, SCHEMA_VERSION)
    ]
    await stores[0].put(KEY, Token("at_1"))
    read = await stores[-1].get(KEY)
    assert read is not None
    assert read.token.access_token == "at_1"


async def test_a_schema_of_its_own_keeps_its_grants_apart(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    first = await open_stores(postgres_url, schema="tokens_a")
    second = await open_stores(postgres_url, schema="tokens_b")
    await first.put(KEY, Token("at_a"))
    assert await second.get(KEY) is None
    tables = await sql(
        postgres_url,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema LIKE 'tokens_%' ORDER BY 1, 2",
    )
    names = ["flows", "grants", "leases", "schema_version", "sessions"]
    assert tables == [("tokens_a", n) for n in names] + [("tokens_b", n) for n in names]


@pytest.mark.parametrize(
    "schema",
    ["", "Tokens", "a-b", 'x"; DROP TABLE t; --', "1abc", "a" * 64, "public", "pg_temp", 7],
)
def test_schema_names_are_checked_strictly(schema: object) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        open_store(
            "postgresql://u:p@127.0.0.1:1/db",
            encryption_keys=[_key()],
            schema=schema,
        )


async def test_a_database_at_schema_version_1_gains_the_session_tables(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    await (await open_stores(postgres_url)).put(KEY, Token("at_1"))
    await sql(postgres_url, "DROP TABLE whop_oauth.sessions, whop_oauth.flows")
    await sql(postgres_url, "UPDATE whop_oauth.schema_version SET version = 1")
    store = await open_stores(postgres_url)
    assert await store.claim_flow("f" * 64, time.time() + 60) is True  # type: ignore[attr-defined]
    read = await store.get(KEY)
    assert read is not None
    assert read.token.access_token == "at_1"
    assert await sql(postgres_url, "SELECT version FROM whop_oauth.schema_version") == [(2,)]


async def test_a_database_with_a_newer_schema_version_is_refused(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    await (await open_stores(postgres_url)).put(KEY, Token("at_1"))
    await sql(postgres_url, "UPDATE whop_oauth.schema_version SET version = 99")
    with pytest.raises(TokenStoreError, match="version 99, newer"):
        await (await open_stores(postgres_url)).get(KEY)


async def test_tokens_rest_encrypted_and_an_older_ciphertext_put_back_does_not_decrypt(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(postgres_url)
    await store.put(KEY, Token("at_secret_1", refresh_token="rt_secret_1"))
    [(old_blob,)] = await sql(postgres_url, "SELECT blob FROM whop_oauth.grants")
    assert isinstance(old_blob, bytes)
    assert b"secret" not in old_blob
    await store.put(KEY, Token("at_2", refresh_token="rt_2"))
    await sql(postgres_url, "UPDATE whop_oauth.grants SET blob = %s", old_blob)
    with pytest.raises(DecryptionError, match="older value"):
        await store.get(KEY)


async def test_a_key_with_a_nul_character_is_an_invalid_token_key(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(postgres_url)
    with pytest.raises(InvalidTokenKey, match="NUL"):
        await store.put(TokenKey("biz_1", "user\x00x", "https://issuer.test", "app_1"), Token("a"))


async def test_cleanup_removes_grants_past_retention_and_keeps_the_rest(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(postgres_url, retention=3600)
    now = time.time()
    other = TokenKey("biz_1", "user_2", KEY.issuer, KEY.client_id)
    await store.put(KEY, Token("a", refresh_token="r", expires_at=now - 600))
    await store.put(other, Token("b", refresh_token=None, expires_at=now - 600))  # cannot refresh
    assert await store.cleanup() == 1  # type: ignore[attr-defined]
    assert await store.get(KEY) is not None
    assert await store.get(other) is None


async def test_an_unreachable_server_is_a_typed_error_naming_it_never_the_password(
    open_stores: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    store = await open_stores(f"postgresql://whop:{PASSWORD}@127.0.0.1:{port}/x", timeout=0.5)
    with pytest.raises(TokenStoreError) as caught:
        await store.get(KEY)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "refused" in message
    assert PASSWORD not in message + repr(store) + caplog.text
    assert caught.value.__cause__ is None  # nothing chained that could print the URL


async def test_a_wrong_password_fails_at_once_and_is_never_echoed(
    postgres_server: PostgresServer, open_stores: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "hunter2-wrong-password"
    url = postgres_server.url.replace(PASSWORD, wrong)
    before = postgres_server.log_tail(full=True).count("password authentication failed")
    with pytest.raises(TokenStoreError, match="password authentication failed") as caught:
        await (await open_stores(url, timeout=30)).get(KEY)
    assert wrong not in str(caught.value) + caplog.text
    # Tried once, not retried until the timeout: a wrong password does not heal.
    after = postgres_server.log_tail(full=True).count("password authentication failed")
    assert after - before == 1


async def test_pool_exhaustion_is_a_typed_error_and_writes_nothing(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(postgres_url, max_connections=1, timeout=1.0)
    stored = await store.put(KEY, Token("at_1"))
    async with await psycopg.AsyncConnection.connect(postgres_url) as blocker:
        await blocker.execute("SELECT * FROM whop_oauth.grants FOR UPDATE")  # holds the row
        results = await asyncio.gather(
            store.put(KEY, Token("at_2"), expected_version=stored.version),  # waits on the row
            store.put(KEY, Token("at_3"), expected_version=stored.version),  # waits for the pool
            return_exceptions=True,
        )
        await blocker.rollback()
    assert all(isinstance(r, TokenStoreError) for r in results), results
    messages = " | ".join(str(r) for r in results)
    assert "all 1 connections stayed busy" in messages
    assert "no answer within 1 s" in messages
    read = await store.get(KEY)
    assert read is not None
    assert (read.version, read.token.access_token) == (stored.version, "at_1")


async def test_a_write_whose_connection_is_killed_is_retried_and_lands_once(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(postgres_url)
    stored = await store.put(KEY, Token("at_1"))
    async with await psycopg.AsyncConnection.connect(postgres_url) as blocker:
        await blocker.execute("SELECT * FROM whop_oauth.grants FOR UPDATE")
        write = asyncio.create_task(
            store.put(KEY, Token("at_2"), expected_version=stored.version)
        )
        killed = await _kill_when_waiting(postgres_url)
        await blocker.rollback()
    written = await write
    assert killed == 1
    read = await store.get(KEY)
    assert read is not None
    assert (read.version, read.token.access_token) == (written.version, "at_2")
    with pytest.raises(StaleWriteError):  # and the first attempt did not land on top of it
        await store.put(KEY, Token("at_x"), expected_version=stored.version)


async def _kill_when_waiting(url: str) -> int:
    """Terminate the store's backend once it waits for a row lock; how many were killed."""
    for _ in range(200):
        rows = await sql(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'whop_oauth' AND wait_event_type = 'Lock'",
        )
        if rows:
            return len(rows)
        await asyncio.sleep(0.02)
    raise AssertionError("the write never waited for the row")


async def test_a_lease_outlives_its_holders_dropped_connections(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    # An advisory lock would be released here, and a second worker would refresh
    # while the first one's request is still in flight.
    holder = await open_stores(f"{postgres_url}?application_name=holder")
    other = await open_stores(postgres_url)
    async with holder.lock(KEY, lease=5, timeout=1) as lease:
        await sql(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'holder'",
        )
        with pytest.raises(LockTimeout):
            async with other.lock(KEY, lease=5, timeout=0.5):
                pass
        await lease.reserve(1)  # still ours, renewed over a new connection
        await holder.put(KEY, Token("at_1"), fence=lease.generation)


@pytest.mark.slow
async def test_a_server_restart_during_a_storm_refreshes_once_and_keeps_the_grant(
    postgres_server: PostgresServer,
    postgres_url: str,
    keys: list[str],
    open_stores: StoreFactory,
    provider: MockWhop,
    http: httpx.AsyncClient,
    workers: list[Workers],
) -> None:
    client = make_client(provider.issuer, http)
    grant = await sign_in(client, http)
    await TokenManager(client, await open_stores(postgres_url)).save(expired(grant), user=USER)
    group = Workers(2, postgres_url, provider.issuer, keys, callers=100)
    workers.append(group)

    # The lock holder's refresh is answered 0.3 s late; the server is down meanwhile,
    # so the holder's write and everyone's polling meet a dead server.
    provider.hold_next("token", 0.3)
    group.go()
    assert await asyncio.to_thread(provider.wait_for_fault, 20)
    await asyncio.to_thread(postgres_server.stop)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(postgres_server.start, postgres_server.port)
    results = await asyncio.to_thread(group.results)

    tokens: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        tokens.update(result.tokens)
        errors.update(result.errors)
    assert set(errors) <= {"TokenStoreError", "LockTimeout"}, errors
    assert sum(tokens.values()) + sum(errors.values()) == 200
    assert len(tokens) == 1
    assert grant.access_token not in tokens
    stats = provider.stats
    assert (stats.token_refresh, stats.invalid_grant, stats.refresh_reuse_detected) == (1, 0, 0)
    manager = TokenManager(client, await open_stores(postgres_url))
    stored = await manager.get_token(user=USER)
    assert set(tokens) == {stored.access_token}
    again = await manager.refresh(user=USER, rejected_access_token=stored.access_token)
    assert (await client.userinfo(again))["sub"] == USER


def test_the_store_class_is_exported_lazily() -> None:
    store = open_store("postgres://u:secret-pw@db.internal:6543/app", encryption_keys=[_key()])
    assert isinstance(store, PostgresTokenStore)
    assert repr(store) == "<PostgresTokenStore db.internal:6543 schema='whop_oauth'>"


def _key() -> str:
    from whop_oauth import generate_encryption_key

    return generate_encryption_key()


async def test_reads_survive_their_own_connection_being_killed(
    postgres_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(postgres_url)
    await store.put(KEY, Token("at_1"))
    assert await store.get(KEY) is not None  # the pool; the reader connects meanwhile
    await asyncio.sleep(0.5)
    assert await store.get(KEY) is not None  # on the reader
    killed = await sql(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'whop_oauth'",
    )
    assert killed  # the reader and the pool's connections are gone
    stored = await store.get(KEY)  # the dead reader is dropped; the pool's way retries
    assert stored is not None
    assert stored.token.access_token == "at_1"
