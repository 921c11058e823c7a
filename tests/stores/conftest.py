"""Fixtures for the store tests: a real redis-server, stores of every backend, a provider."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from stores_support import FaultyProvider, StoreFactory, Workers, make_client, serve_provider

from whop_oauth import OAuthClient, generate_encryption_key, open_store
from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockWhop

REDIS_SERVER = "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole session; yields its URL."""
    binary = REDIS_SERVER if os.path.exists(REDIS_SERVER) else shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: run `make system-deps` (apt-get install redis-server)"
        )
    workdir = tmp_path_factory.mktemp("redis")
    for _ in range(3):  # another process may take the free port before redis binds it
        port = _free_port()
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        process = subprocess.Popen(
            [*args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()
        if process.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def keys() -> list[str]:
    return [generate_encryption_key()]


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.param
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'tokens.db'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def open_stores(keys: list[str]) -> AsyncIterator[StoreFactory]:
    """Opens stores and closes them all at the end of the test."""
    opened: list[TokenStore] = []

    async def factory(url: str, **options: object) -> TokenStore:
        store = open_store(url, encryption_keys=options.pop("encryption_keys", keys), **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(store_url: str, open_stores: StoreFactory) -> TokenStore:
    return await open_stores(store_url)


@pytest.fixture
def provider() -> Iterator[FaultyProvider]:
    """A MockWhop (with extra faults) on a free loopback port."""
    with serve_provider() as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock() -> FaultyProvider:
    """An in-process MockWhop (reached through httpx.ASGITransport), with extra faults."""
    return FaultyProvider(MockWhop())


@pytest.fixture
async def mock_http(mock: FaultyProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mock)) as client:
        yield client


@pytest.fixture
def client(mock: FaultyProvider, mock_http: httpx.AsyncClient) -> OAuthClient:
    """The real OAuthClient against the in-process mock; failures are not retried."""
    return make_client(mock.mock.issuer, mock_http, max_retries=0)


@pytest.fixture
def shared_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store several processes can share: a SQLite file, or the session's Redis."""
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path}/tokens.db"


@pytest.fixture
def workers() -> Iterator[list[Workers]]:
    """Worker process groups started by a test, killed at its end whatever happened."""
    started: list[Workers] = []
    yield started
    for group in started:
        group.kill_all()
