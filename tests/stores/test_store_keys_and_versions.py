"""Keys no backend can write are refused, typed; an older value put back does not decrypt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis
from stores_support import BACKENDS, StoreFactory

from whop_oauth import DecryptionError, InvalidTokenKey, Token, TokenKey, TokenManager
from whop_oauth.stores import MemoryTokenStore, TokenStore

KEY = TokenKey("biz_1", "user_1", "https://issuer.test", "app_1")


@pytest.mark.parametrize("part", ["tenant", "user", "issuer", "client_id"])
def test_a_lone_surrogate_in_a_key_is_an_invalid_token_key(part: str) -> None:
    parts = dict(tenant="biz_1", user="user_1", issuer="https://issuer.test", client_id="app_1")
    parts[part] = "x\ud800"
    with pytest.raises(InvalidTokenKey, match=part) as caught:
        TokenKey(**parts)
    assert isinstance(caught.value, ValueError)  # old callers catching ValueError still do


async def test_the_manager_refuses_an_unencodable_user_before_any_store_call(
    client: object,
) -> None:
    store = MemoryTokenStore()
    manager = TokenManager(client, store)  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenKey):
        await manager.get_token(user="\udcff", tenant="biz_1")


async def test_an_older_ciphertext_put_back_in_its_sqlite_row_does_not_decrypt(
    tmp_path: Path, open_stores: StoreFactory
) -> None:
    path = tmp_path / "tokens.db"
    store = await open_stores(f"sqlite:///{path}")
    await store.put(KEY, Token("at_1", refresh_token="rt_1"))
    raw = sqlite3.connect(path)
    [(old_blob,)] = raw.execute("SELECT blob FROM whop_oauth_grants").fetchall()
    await store.put(KEY, Token("at_2", refresh_token="rt_2"))
    with raw:
        raw.execute("UPDATE whop_oauth_grants SET blob = ?", (old_blob,))
    raw.close()
    with pytest.raises(DecryptionError, match="older value"):
        await store.get(KEY)


@pytest.mark.redis
async def test_an_older_ciphertext_put_back_in_its_redis_hash_does_not_decrypt(
    redis_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(redis_url)
    await store.put(KEY, Token("at_1", refresh_token="rt_1"))
    raw = redis.Redis.from_url(redis_url)
    [name] = raw.keys("*:grant")
    old_blob = raw.hget(name, "b")
    await store.put(KEY, Token("at_2", refresh_token="rt_2"))
    raw.hset(name, "b", old_blob)  # type: ignore[arg-type]
    raw.close()
    with pytest.raises(DecryptionError, match="older value"):
        await store.get(KEY)


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_listing_a_tenant_no_backend_can_write_is_an_invalid_token_key(
    store: TokenStore,
) -> None:
    with pytest.raises(InvalidTokenKey, match="tenant"):
        await store.grant_keys("biz_\ud800")  # type: ignore[attr-defined]
