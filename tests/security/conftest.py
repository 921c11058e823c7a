"""Fixtures for the security suite: a mock Whop, the app signed in against it, no waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from no_sleep import sleeps
from security_support import App, build_app, new_mock

from whop_oauth.testing import MockWhop


@pytest.fixture
def mock() -> MockWhop:
    return new_mock()


@pytest.fixture
async def app(mock: MockWhop) -> AsyncIterator[App]:
    built = build_app(mock)
    yield built
    await built.aclose()


@pytest.fixture
async def browser(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with app.browser() as client:
        yield client


__all__ = ["app", "browser", "mock", "sleeps"]
