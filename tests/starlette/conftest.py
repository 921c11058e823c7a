"""Fixtures: a mock Whop, an app signed in against it, and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette_support import Env, make_env

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
    await env.provider.aclose()


@pytest.fixture
def env_factory(
    mock: MockWhop, http: httpx.AsyncClient
) -> Callable[..., Env]:
    def factory(**options: Any) -> Env:
        return make_env(mock, http, **options)

    return factory


@pytest.fixture
async def browser(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async with env.browser() as client:
        yield client
