"""open_store: one URL picks the backend; bad URLs and missing keys fail clearly."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from stores_support import StoreFactory

from whop_oauth import ConfigurationError, Token, TokenKey, generate_encryption_key, open_store
from whop_oauth.stores import MemoryTokenStore, RedisTokenStore, SQLiteTokenStore

KEY = TokenKey("biz_1", "user_1", "https://api.whop.com", "app_1")


@pytest.mark.redis
async def test_each_scheme_opens_its_backend(
    tmp_path: Path, open_stores: StoreFactory, redis_url: str
) -> None:
    assert isinstance(await open_stores("memory://"), MemoryTokenStore)
    assert isinstance(await open_stores(f"sqlite:///{tmp_path}/a.db"), SQLiteTokenStore)
    assert isinstance(await open_stores(redis_url), RedisTokenStore)


async def test_sqlite_urls_take_relative_and_absolute_paths(
    tmp_path: Path, open_stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = await open_stores("sqlite:///relative.db")
    await relative.put(KEY, Token(access_token="at", expires_at=time.time() + 60))
    assert (tmp_path / "relative.db").exists()
    # From another directory, four slashes still name the same file, not ./tmp/.../relative.db.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    absolute = await open_stores(f"sqlite:///{tmp_path / 'relative.db'}")
    read = await absolute.get(KEY)
    assert read is not None
    assert read.token.access_token == "at"
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///tokens.db",
        "redis://127.0.0.1:1/0",
        "postgresql://u:p@127.0.0.1:1/db",
    ],
)
def test_persistent_stores_refuse_to_open_without_encryption_keys(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="encryption_keys"):
        open_store(url)
    assert not (tmp_path / "tokens.db").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "looks like"),
        ("tokens.db", "looks like"),
        ("mysql://admin:hunter2-secret@db:3306/x", "unknown token store scheme 'mysql'"),
        ("mem://", "unknown token store scheme"),
        ("memory://somewhere", "just memory://"),
        ("sqlite://host/tokens.db", "sqlite:///relative.db"),
        ("sqlite:///", "needs a file name"),
        ("sqlite:///dir/", "needs a file name"),
        ("redis://:hunter2-secret@127.0.0.1:notaport/0", "malformed"),
        ("postgresql://admin:hunter2-secret@db:notaport/x", "malformed"),
        ("postgres://admin:hunter2-secret@db:5432/x?sslmode", "PostgreSQL URL is malformed"),
    ],
)
def test_malformed_urls_fail_clearly_and_never_echo_a_password(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url, encryption_keys=[generate_encryption_key()])
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown memory store option"):
        open_store("memory://", colour="blue")
    with pytest.raises(ConfigurationError, match="unknown postgres store option"):
        open_store("postgresql://db/x", encryption_keys=[generate_encryption_key()], prefix="x")


def test_generated_keys_are_distinct_32_byte_keys() -> None:
    keys = {generate_encryption_key() for _ in range(50)}
    assert len(keys) == 50
    assert {len(base64.urlsafe_b64decode(key)) for key in keys} == {32}


async def test_sqlite_cleanup_removes_grants_past_retention_and_keeps_the_rest(
    tmp_path: Path, open_stores: StoreFactory
) -> None:
    store = await open_stores(f"sqlite:///{tmp_path}/t.db", retention=3600)
    now = time.time()
    keep = Token(access_token="a", refresh_token="r", expires_at=now - 600)
    dead = Token(access_token="b", refresh_token=None, expires_at=now - 600)  # cannot refresh
    await store.put(KEY, keep)
    other = TokenKey("biz_1", "user_2", KEY.issuer, KEY.client_id)
    await store.put(other, dead)
    assert await store.cleanup() == 1  # type: ignore[attr-defined]
    kept = await store.get(KEY)
    assert kept is not None
    assert kept.token == keep
    assert await store.get(other) is None


async def test_memory_cleanup_applies_the_same_retention(open_stores: StoreFactory) -> None:
    store = await open_stores("memory://", retention=0.01)
    await store.put(KEY, Token(access_token="a", refresh_token="r"))
    assert store.cleanup(time.time() + 1) == 1  # type: ignore[attr-defined]
    assert await store.get(KEY) is None


async def test_store_reprs_show_no_secret(tmp_path: Path, open_stores: StoreFactory) -> None:
    key = generate_encryption_key()
    store = await open_stores(f"sqlite:///{tmp_path}/t.db", encryption_keys=[key])
    assert key not in repr(store)
    assert os.fspath(tmp_path) in repr(store)


async def test_the_sqlite_file_is_readable_by_its_owner_only(
    tmp_path: Path, open_stores: StoreFactory
) -> None:
    store = await open_stores(f"sqlite:///{tmp_path}/t.db")
    await store.put(KEY, Token(access_token="a", refresh_token="r"))
    assert file_modes(tmp_path) == {"t.db": 0o600, "t.db-shm": 0o600, "t.db-wal": 0o600}


def file_modes(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mode & 0o777 for path in directory.glob("t.db*")}


@pytest.mark.redis
def test_a_redis_client_that_decodes_responses_is_refused_at_once(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from whop_oauth.stores import RedisTokenStore, TokenCipher

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decodes responses"):
        RedisTokenStore(client, cipher=TokenCipher([generate_encryption_key()]))
