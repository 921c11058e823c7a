"""Tokens are encrypted at rest, bound to their row, and readable across key rotation."""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

import pytest
import redis
from stores_support import StoreFactory

from whop_oauth import (
    ConfigurationError,
    DecryptionError,
    Token,
    TokenKey,
    generate_encryption_key,
)
from whop_oauth.stores import TokenCipher

ALICE = TokenKey("biz_1", "user_alice", "https://api.whop.com", "app_1")
BOB = TokenKey("biz_1", "user_bob", "https://api.whop.com", "app_1")


def secret_token() -> Token:
    """A token whose every secret is a distinctive random string, easy to search for."""
    return Token(
        access_token="AT" + secrets.token_hex(16),
        refresh_token="RT" + secrets.token_hex(16),
        id_token="ID" + secrets.token_hex(16),
        expires_at=time.time() + 3600,
    )


def secrets_of(token: Token) -> list[bytes]:
    values = [token.access_token, token.refresh_token, token.id_token]
    return [value.encode() for value in values if value]


def raw_sqlite_bytes(path: Path) -> bytes:
    # The database, its WAL and shared-memory files: wherever a page may sit.
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_the_sqlite_file_holds_no_token_in_plaintext(
    tmp_path: Path, open_stores: StoreFactory
) -> None:
    path = tmp_path / "tokens.db"
    store = await open_stores(f"sqlite:///{path}")
    tokens = [secret_token() for _ in range(5)]
    for index, token in enumerate(tokens):
        await store.put(TokenKey("biz_1", f"user_{index}", "https://api.whop.com", "app_1"), token)
    raw = raw_sqlite_bytes(path)
    assert b"user_3" in raw  # the search does see the file's contents
    for token in tokens:
        for value in secrets_of(token):
            assert value not in raw


@pytest.mark.redis
async def test_redis_holds_no_token_in_plaintext(redis_url: str, open_stores: StoreFactory) -> None:
    store = await open_stores(redis_url)
    token = secret_token()
    await store.put(ALICE, token)
    raw = redis.Redis.from_url(redis_url)
    names = raw.keys("*")
    dumped = b"".join(names) + b"".join(
        b"".join(k + v for k, v in raw.hgetall(name).items())  # type: ignore[union-attr]
        for name in names
        if raw.type(name) == b"hash"
    )
    raw.close()
    assert b"user_alice" in dumped
    for value in secrets_of(token):
        assert value not in dumped


@pytest.mark.redis
async def test_redis_grant_keys_expire_after_the_retention(
    redis_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(redis_url, retention=3600)
    await store.put(ALICE, secret_token())
    raw = redis.Redis.from_url(redis_url)
    ttls = [raw.ttl(name) for name in raw.keys("whop_oauth:*")]
    raw.close()
    assert len(ttls) == 1
    assert 3500 < ttls[0] <= 3600  # type: ignore[operator]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_rotated_keys_keep_old_grants_readable_until_the_old_key_is_dropped(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, open_stores: StoreFactory
) -> None:
    url = (
        f"sqlite:///{tmp_path / 't.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    old_key, new_key = generate_encryption_key(), generate_encryption_key()
    before, after = secret_token(), secret_token()
    await (await open_stores(url, encryption_keys=[old_key])).put(ALICE, before)

    rotated = await open_stores(url, encryption_keys=[new_key, old_key])
    read = await rotated.get(ALICE)
    assert read is not None
    assert read.token == before
    await rotated.put(BOB, after)  # written with the first key: the new one

    only_new = await open_stores(url, encryption_keys=[new_key])
    bob = await only_new.get(BOB)
    assert bob is not None
    assert bob.token == after
    with pytest.raises(DecryptionError) as caught:
        await only_new.get(ALICE)
    assert "not configured" in str(caught.value)


async def test_a_value_copied_to_another_users_row_does_not_decrypt(
    tmp_path: Path, open_stores: StoreFactory
) -> None:
    path = tmp_path / "tokens.db"
    store = await open_stores(f"sqlite:///{path}")
    await store.put(ALICE, secret_token())
    await store.put(BOB, secret_token())
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE whop_oauth_grants SET blob = (SELECT blob FROM whop_oauth_grants "
            "WHERE user = 'user_alice') WHERE user = 'user_bob'"
        )
    with pytest.raises(DecryptionError) as caught:
        await store.get(BOB)
    assert "another tenant, user or client" in str(caught.value)


@pytest.mark.redis
async def test_a_redis_value_copied_to_another_users_key_does_not_decrypt(
    redis_url: str, open_stores: StoreFactory
) -> None:
    store = await open_stores(redis_url)
    await store.put(ALICE, secret_token())
    await store.put(BOB, secret_token())
    raw = redis.Redis.from_url(redis_url)
    [alice_name] = raw.keys("*user_alice*")
    [bob_name] = raw.keys("*user_bob*")
    raw.hset(bob_name, "b", raw.hget(alice_name, "b"))  # type: ignore[arg-type]
    raw.close()
    with pytest.raises(DecryptionError):
        await store.get(BOB)


def test_a_tampered_value_fails_with_a_clear_error_naming_no_value() -> None:
    cipher = TokenCipher([generate_encryption_key()])
    token = secret_token()
    blob = bytearray(cipher.encrypt(ALICE, token, version=1))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(ALICE, bytes(blob), version=1)
    for value in secrets_of(token):
        assert value.decode() not in str(caught.value)


def test_every_encryption_uses_a_fresh_nonce() -> None:
    cipher = TokenCipher([generate_encryption_key()])
    token = secret_token()
    assert cipher.encrypt(ALICE, token, version=1) != cipher.encrypt(ALICE, token, version=1)


@pytest.mark.parametrize(
    "keys",
    [[], "a-single-string-key", ["too-short"], ["!!!!" * 11], [generate_encryption_key()[:-8]]],
)
def test_unusable_keys_are_refused_without_echoing_them(keys: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TokenCipher(keys)  # type: ignore[arg-type]
    for key in keys if isinstance(keys, list) else [keys]:
        assert str(key) not in str(caught.value)


def test_a_cipher_repr_shows_no_key() -> None:
    key = generate_encryption_key()
    assert key not in repr(TokenCipher([key]))
