"""Provider fixtures for tests that drive TokenManager and OAuthClient without an app:
MockWhop in-process or on a loopback port, an httpx client for it, the real OAuthClient.

A folder's conftest.py imports the fixtures it needs by name from here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from app_driver import make_client

from whop_oauth import OAuthClient
from whop_oauth.testing import MockWhop


@pytest.fixture
def provider() -> Iterator[MockWhop]:
    """A MockWhop on a free loopback port, its issuer that URL."""
    with MockWhop.on_free_port() as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock() -> MockWhop:
    """An in-process MockWhop (reached through its httpx transport)."""
    return MockWhop()


@pytest.fixture
async def mock_http(mock: MockWhop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=mock.transport()) as client:
        yield client


@pytest.fixture
def client(mock: MockWhop, mock_http: httpx.AsyncClient) -> OAuthClient:
    """The real OAuthClient against the in-process mock; failures are not retried."""
    return make_client(mock.issuer, mock_http, max_retries=0)
