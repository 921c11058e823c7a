"""Fixtures for the tests against panva's oidc-provider: the servers, Redis, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from independent_support import OidcServer, StormWorkers, run_oidc_server
from redis_server import flush, run_redis_server

from whop_oauth import generate_encryption_key


def _server(ttl: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    log = tmp_path_factory.mktemp(f"oidc-provider-{ttl}s") / "server.log"
    with run_oidc_server(ttl, log) as server:
        yield server


@pytest.fixture(scope="session")
def oidc_10s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    """oidc-provider issuing 10-second access tokens, for the whole session."""
    yield from _server(10, tmp_path_factory)


@pytest.fixture(scope="session")
def oidc_5s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    """oidc-provider issuing 5-second access tokens: a storm test waits for a real expiry,
    and the refreshed token stays fresh for the rest of the storm (about a second)."""
    yield from _server(5, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def shared_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store several processes can share: a SQLite file, or the session's Redis (emptied)."""
    if backend == "redis":
        url = str(request.getfixturevalue("redis_server"))
        flush(url)
        return url
    return f"sqlite:///{tmp_path}/tokens.db"


@pytest.fixture
def keys() -> list[str]:
    return [generate_encryption_key()]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def workers() -> Iterator[list[StormWorkers]]:
    """Worker process groups started by a test, killed at its end whatever happened."""
    started: list[StormWorkers] = []
    yield started
    for group in started:
        group.kill_all()
