"""Fixtures for the tests against panva's oidc-provider: the servers, Redis, a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from independent_support import OidcServer, StormWorkers, run_oidc_server
from provider_fixtures import http
from store_fixtures import keys, shared_url


def _server(ttl: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    log = tmp_path_factory.mktemp(f"oidc-provider-{ttl}s") / "server.log"
    with run_oidc_server(ttl, log) as server:
        yield server


@pytest.fixture(scope="session")
def oidc_10s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    """oidc-provider issuing 10-second access tokens, for the whole session."""
    yield from _server(10, tmp_path_factory)


@pytest.fixture(scope="session")
def oidc_5s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcServer]:
    """oidc-provider issuing 5-second access tokens: a storm test waits for a real expiry,
    and the refreshed token stays fresh for the rest of the storm (about a second)."""
    yield from _server(5, tmp_path_factory)


@pytest.fixture
def workers() -> Iterator[list[StormWorkers]]:
    """Worker process groups started by a test, killed at its end whatever happened."""
    started: list[StormWorkers] = []
    yield started
    for group in started:
        group.kill_all()


__all__ = ["http", "keys", "oidc_5s", "oidc_10s", "shared_url", "workers"]
