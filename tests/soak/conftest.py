"""Fixtures for the deployment soak: a real redis-server and a MockWhop on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import PostgresServer
from redis_server import flush
from soak_harness import ACCESS_TOKEN_TTL, GRANTS
from soak_mock import ObservedWhop

from whop_oauth.testing import MockUser


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The shared store a soak test runs on: each one a multi-process deployment may use."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store for every process: a SQLite file (absolute path), the session's Redis,
    or the session's PostgreSQL (emptied)."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        server.reset()
        return server.url
    if backend == "redis":
        url = str(request.getfixturevalue("redis_server"))
        flush(url)
        return url
    return f"sqlite:///{tmp_path.resolve() / 'tokens.db'}"


@pytest.fixture
def soak_mock() -> Iterator[ObservedWhop]:
    """Whop with rotation and reuse detection, on a real socket, with one user per grant."""
    users = sorted({user for _, user in GRANTS})
    accounts = [MockUser(u, name=u, username=u, email=f"{u}@example.com") for u in users]
    with ObservedWhop.on_free_port(access_token_ttl=ACCESS_TOKEN_TTL, users=accounts) as mock:
        try:
            yield mock
        finally:
            if mock.log is not None:
                mock.log.close()
