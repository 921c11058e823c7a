"""Fixtures for the mock Whop tests: an httpx client on the in-process mock, a flow."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from mock_support import Flow

from whop_oauth.testing import MockWhop


@pytest.fixture
async def http(mock_whop: MockWhop) -> AsyncIterator[httpx.AsyncClient]:
    transport = mock_whop.transport()
    async with httpx.AsyncClient(transport=transport, base_url=mock_whop.issuer) as client:
        yield client


@pytest.fixture
def flow(http: httpx.AsyncClient) -> Flow:
    return Flow(http)
