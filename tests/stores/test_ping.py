"""Start-up checks and store errors a newcomer can act on: ``await store.ping()`` on every
backend, Redis and PostgreSQL failures naming host:port and the cause (never the
password), and the SQLite file's absolute path at open."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import pytest
from stores_support import BACKENDS

from whop_oauth import TokenKey, TokenStoreError, generate_encryption_key, open_store
from whop_oauth.stores import TokenStore

KEYS = [generate_encryption_key()]
PASSWORD = "hunter2-not-in-logs"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_ping_answers_on_a_healthy_store(store: TokenStore) -> None:
    assert await store.ping() is None  # type: ignore[attr-defined]


@pytest.mark.redis
async def test_redis_down_names_host_port_and_cause_never_the_password() -> None:
    port = closed_port()
    store = open_store(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", encryption_keys=KEYS)
    try:
        with pytest.raises(TokenStoreError) as pinged:
            await store.ping()  # type: ignore[attr-defined]
        with pytest.raises(TokenStoreError) as read:
            await store.get(TokenKey("biz_1", "user_1", "https://api.whop.com", "app_1"))
    finally:
        await store.aclose()

    for caught in (pinged, read):
        message = str(caught.value)
        assert message.startswith(
            f"Redis token store at 127.0.0.1:{port}: ConnectionError: Error 111 connecting to "
            f"127.0.0.1:{port}."
        )
        assert PASSWORD not in message


@pytest.mark.postgres
async def test_postgres_down_fails_ping_fast_with_host_port_never_the_password() -> None:
    pytest.importorskip("psycopg")
    port = closed_port()
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/app"
    store = open_store(url, encryption_keys=KEYS, timeout=2.0)
    try:
        with pytest.raises(TokenStoreError) as caught:
            await store.ping()  # type: ignore[attr-defined]
    finally:
        await store.aclose()

    assert str(caught.value).startswith(f"PostgreSQL token store at 127.0.0.1:{port}: ")
    assert PASSWORD not in str(caught.value)


async def test_sqlite_ping_names_the_file_when_it_cannot_take_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.db"
    store = open_store(f"sqlite:///{path}", encryption_keys=KEYS, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(TokenStoreError) as caught:
            await store.ping()  # type: ignore[attr-defined]
        other.execute("ROLLBACK")
        await store.ping()  # type: ignore[attr-defined]
    finally:
        other.close()
        await store.aclose()

    assert str(caught.value) == (
        f"SQLite token store {path}: OperationalError: database is locked"
    )


async def test_sqlite_logs_the_absolute_path_of_a_relative_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whop_oauth.stores")
    monkeypatch.chdir(tmp_path)

    store = open_store("sqlite:///whop_oauth_tokens.db", encryption_keys=KEYS)
    await store.aclose()

    assert f"SQLite token store: {tmp_path / 'whop_oauth_tokens.db'}" in caplog.messages
