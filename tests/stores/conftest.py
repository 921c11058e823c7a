"""Fixtures for the store tests: real redis-server and PostgreSQL servers, stores of every
backend, a provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from postgres_server import PostgresServer, run_postgres_server
from redis_server import flush, run_redis_server
from stores_support import FaultyProvider, StoreFactory, Workers, make_client, serve_provider

from whop_oauth import OAuthClient, generate_encryption_key, open_store
from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockWhop


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole session; yields its URL."""
    with run_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    flush(redis_server)
    return redis_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL (Debian's package) on a free loopback port, for the whole session."""
    with run_postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL, with every schema a test made dropped; yields its URL."""
    postgres_server.reset()
    return postgres_server.url


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
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
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
    """A store several processes can share: a SQLite file, the session's Redis or PostgreSQL."""
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/tokens.db"


@pytest.fixture
def workers() -> Iterator[list[Workers]]:
    """Worker process groups started by a test, killed at its end whatever happened."""
    started: list[Workers] = []
    yield started
    for group in started:
        group.kill_all()
