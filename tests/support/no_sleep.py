"""The ``sleeps`` fixture: retry waits are recorded, not slept. A folder's conftest.py
imports it to make it autouse there."""

from __future__ import annotations

import pytest

from whop_oauth import _http as http_module


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept: tests stay fast, and can check what the
    library would have waited."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(http_module, "_sleep", fake_sleep)
    return recorded
