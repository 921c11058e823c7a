"""TokenManager's settings: what it refuses, what it accepts, and what its defaults do."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import pytest
from app_driver import USER, make_client, sign_in

from whop_oauth import ConfigurationError, OAuthClient, Token, TokenManager
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop


@pytest.fixture
def quick_client(mock: MockWhop, mock_http: httpx.AsyncClient) -> OAuthClient:
    """A client whose requests may take at most 0.5 s in all."""
    return make_client(mock.issuer, mock_http, max_retries=0, timeout=0.5, deadline=0.5)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("leeway", -1),
        ("lock_timeout", -0.1),
        ("failure_backoff", -1),
        ("cache_ttl", -1),
        ("lock_lease", 0),
        ("lock_lease", -5),
    ],
)
def test_a_negative_duration_or_an_empty_lease_is_refused(
    quick_client: OAuthClient, option: str, value: float
) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^lock_lease must be > 0; the other durations >= 0$"
    ):
        TokenManager(quick_client, MemoryTokenStore(), **{option: value})


@pytest.mark.parametrize(
    "options",
    [
        {"leeway": 0, "lock_timeout": 0, "failure_backoff": 0, "cache_ttl": 0},
        {"lock_lease": 0.6},  # just over the client's 0.5 s deadline
        {"lock_lease": 1},
    ],
)
def test_zero_durations_and_a_lease_just_over_the_deadline_are_accepted(
    quick_client: OAuthClient, options: dict[str, Any]
) -> None:
    TokenManager(quick_client, MemoryTokenStore(), **options)


def test_a_lease_equal_to_the_deadline_is_refused_naming_both(quick_client: OAuthClient) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TokenManager(quick_client, MemoryTokenStore(), lock_lease=0.5)
    assert str(caught.value) == (
        "lock_lease (0.5 s) must be longer than the client's deadline (0.5 s): "
        "a refresh must end within the lease guarding it"
    )


def test_an_unknown_undecryptable_policy_is_refused(quick_client: OAuthClient) -> None:
    with pytest.raises(ConfigurationError, match=r"^undecryptable must be 'raise' or 'delete'$"):
        TokenManager(quick_client, MemoryTokenStore(), undecryptable="ignore")  # type: ignore[arg-type]


def test_both_undecryptable_policies_are_accepted(quick_client: OAuthClient) -> None:
    for policy in ("raise", "delete"):
        TokenManager(quick_client, MemoryTokenStore(), undecryptable=policy)  # type: ignore[arg-type]


def left(token: Token, seconds: float) -> Token:
    """An hour-long grant with ``seconds`` left."""
    now = time.time()
    return dataclasses.replace(token, expires_at=now + seconds, issued_at=now + seconds - 3600)


async def test_by_default_a_token_is_refreshed_within_its_last_minute_only(
    client: OAuthClient, mock_http: httpx.AsyncClient, mock: MockWhop
) -> None:
    grant = await sign_in(client, mock_http)
    manager = TokenManager(client, MemoryTokenStore(), cache_ttl=0)
    await manager.save(left(grant, 60.5), user=USER)
    assert await manager.access_token(user=USER) == grant.access_token
    await manager.save(left(grant, 59.5), user=USER)
    assert await manager.access_token(user=USER) != grant.access_token
    assert mock.stats.token_refresh == 1


async def test_by_default_the_last_session_ending_revokes_the_grant(
    client: OAuthClient, mock_http: httpx.AsyncClient, mock: MockWhop
) -> None:
    grant = await sign_in(client, mock_http)
    manager = TokenManager(client, MemoryTokenStore())
    assert manager.keep_grants_for_background is False
    await manager.save(grant, user=USER)
    await manager.sessions.create("session_1", manager.key(user=USER), lifetime=3600)

    await manager.end_session("session_1")

    assert mock.is_revoked(grant.refresh_token)  # type: ignore[arg-type]


async def test_a_separate_session_store_keeps_the_sessions(
    client: OAuthClient, mock_http: httpx.AsyncClient
) -> None:
    sessions, grants = MemoryTokenStore(), MemoryTokenStore()
    manager = TokenManager(client, grants, session_store=sessions)
    await manager.sessions.create("session_1", manager.key(user=USER), lifetime=3600)

    assert await sessions.count_live_sessions(manager.key(user=USER)) == 1
    assert await grants.count_live_sessions(manager.key(user=USER)) == 0


def test_a_store_without_sessions_has_no_session_registry(client: OAuthClient) -> None:
    class GrantsOnly:
        """A token store that keeps no sessions."""

    manager = TokenManager(client, GrantsOnly())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="keeps no sessions"):
        _ = manager.sessions


def test_the_repr_names_the_client_and_store_only(client: OAuthClient) -> None:
    store = MemoryTokenStore()
    assert repr(TokenManager(client, store)) == (
        f"<TokenManager client_id='app_mock' store={store!r}>"
    )


async def test_with_no_cache_a_session_ended_elsewhere_is_seen_at_once(
    client: OAuthClient,
) -> None:
    store = MemoryTokenStore()
    here, elsewhere = (TokenManager(client, store, cache_ttl=0) for _ in range(2))
    await here.sessions.create("session_1", here.key(user=USER), lifetime=3600)
    assert await here.sessions.get("session_1") is not None

    await elsewhere.sessions.end("session_1")

    assert await here.sessions.get("session_1") is None


async def test_a_grant_without_expiry_is_served_as_is_and_never_refreshed(
    client: OAuthClient, mock: MockWhop
) -> None:
    manager = TokenManager(client, MemoryTokenStore())
    await manager.save(Token("at-no-expiry", refresh_token="rt-no-expiry"), user=USER)

    assert await manager.access_token(user=USER) == "at-no-expiry"
    assert mock.stats.token_requests == 0
