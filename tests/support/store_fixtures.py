"""Store fixtures shared by tests/stores and tests/manager: real redis-server and PostgreSQL
servers, stores of every backend, and worker processes that share one store.

A folder's conftest.py imports the fixtures it needs by name from here."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from postgres_server import PostgresServer, run_postgres_server
from redis_server import flush, run_redis_server
from worker_group import WorkerGroup

from whop_oauth import generate_encryption_key, open_store
from whop_oauth.stores import TokenStore

#: Every backend; Redis and PostgreSQL ones need the session's real servers.
BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
#: The backends several processes can share.
SHARED_BACKENDS = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
StoreFactory = Callable[..., Awaitable[TokenStore]]


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
def shared_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store several processes can share: a SQLite file, the session's Redis or PostgreSQL."""
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/tokens.db"


WORKER = Path(__file__).parent.parent / "manager" / "storm_worker.py"


@dataclasses.dataclass
class WorkerResult:
    tokens: dict[str, int]
    errors: dict[str, int]
    waits: list[float]


class Workers(WorkerGroup):
    """Worker processes (tests/manager/storm_worker.py), each started and waiting for the
    signal."""

    def __init__(
        self,
        count: int,
        store_url: str,
        issuer: str,
        keys: list[str],
        *,
        callers: int,
        lease: float = 30.0,
    ) -> None:
        env = {**os.environ, "WHOP_TEST_KEYS": ",".join(keys)}
        args = [sys.executable, str(WORKER), store_url, issuer, str(callers), str(lease)]
        super().__init__(args, env, count)
        self.wait_ready()

    def results(self, processes: list[subprocess.Popen[str]] | None = None) -> list[WorkerResult]:
        return [WorkerResult(**out) for out in self.outputs(processes)]


@pytest.fixture
def workers() -> Iterator[list[Workers]]:
    """Worker process groups started by a test, killed at its end whatever happened."""
    started: list[Workers] = []
    yield started
    for group in started:
        group.kill_all()
