"""Fixtures for the TokenManager tests: real redis-server and PostgreSQL servers, stores of
every backend (tests/support/store_fixtures.py), a provider (tests/support/provider_fixtures.py)."""

from __future__ import annotations

from provider_fixtures import client, http, mock, mock_http, provider
from store_fixtures import (
    keys,
    open_stores,
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
    shared_url,
    store,
    store_url,
    workers,
)

__all__ = [
    "client",
    "http",
    "keys",
    "mock",
    "mock_http",
    "open_stores",
    "postgres_server",
    "postgres_url",
    "provider",
    "redis_server",
    "redis_url",
    "shared_url",
    "store",
    "store_url",
    "workers",
]
