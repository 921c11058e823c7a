"""Fixtures for the security suite: a mock Whop, the app signed in against it, no waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from security_support import App, build_app, new_mock

from whop_oauth import _http as http_module
from whop_oauth.testing import MockWhop


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept: the suite stays fast, and tests can
    check what the library would have waited."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(http_module, "_sleep", fake_sleep)
    return recorded


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
