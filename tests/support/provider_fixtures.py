"""Provider fixtures for tests that drive TokenManager and OAuthClient without an app:
MockWhop in-process or on a loopback port, an httpx client for it, the real OAuthClient.

A folder's conftest.py imports the fixtures it needs by name from here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from app_driver import FaultyProvider, make_client, serve_provider

from whop_oauth import OAuthClient
from whop_oauth.testing import MockWhop


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
