"""Fixtures for the whole suite: one real redis-server and one PostgreSQL per session,
whichever folders use them, emptied for each test that asks for its URL
(tests/support/store_fixtures.py)."""

from __future__ import annotations

from store_fixtures import postgres_server, postgres_url, redis_server, redis_url

__all__ = ["postgres_server", "postgres_url", "redis_server", "redis_url"]
