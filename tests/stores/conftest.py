"""Fixtures for the store tests: stores of every backend (tests/support/store_fixtures.py;
the session's Redis and PostgreSQL come from tests/conftest.py), a MockWhop in-process or on
a loopback port (tests/support/provider_fixtures.py)."""

from __future__ import annotations

from provider_fixtures import client, http, mock, mock_http, provider
from store_fixtures import keys, open_stores, shared_url, store, store_url, workers

__all__ = [
    "client",
    "http",
    "keys",
    "mock",
    "mock_http",
    "open_stores",
    "provider",
    "shared_url",
    "store",
    "store_url",
    "workers",
]
