"""Fixtures: a mock Whop, an app signed in against it, and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis_server import flush
from starlette_support import Env, make_env

from whop_oauth import generate_encryption_key, open_store
from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockWhop


@pytest.fixture
def mock() -> MockWhop:
    return MockWhop()


@pytest.fixture
async def http(mock: MockWhop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=mock.transport()) as client:
        yield client


@pytest.fixture
async def env(mock: MockWhop, http: httpx.AsyncClient) -> AsyncIterator[Env]:
    env = make_env(mock, http)
    yield env
    await env.aclose()


@pytest.fixture
def env_factory(mock: MockWhop, http: httpx.AsyncClient) -> Callable[..., Env]:
    def factory(**options: Any) -> Env:
        return make_env(mock, http, **options)

    return factory


@pytest.fixture
async def browser(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async with env.browser() as client:
        yield client


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], TokenStore]]:
    """Opens handles on one SQLite file or one (emptied) Redis, as each worker would."""
    if request.param == "redis":
        url = str(request.getfixturevalue("redis_server"))
        flush(url)
    else:
        url = f"sqlite:///{tmp_path / 'tokens.db'}"
    keys = [generate_encryption_key()]
    opened: list[TokenStore] = []

    def handle() -> TokenStore:
        opened.append(open_store(url, encryption_keys=keys))
        return opened[-1]

    yield handle
    for store in opened:
        await store.aclose()
