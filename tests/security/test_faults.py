"""Provider faults during code exchange, refresh, revocation and introspection.

Each fault meets each operation: the typed error comes out, the request is retried
only where a second copy cannot hurt (counted on the wire and at the provider), and
the grant stored before stays exactly as it was and keeps working wherever the
provider did not act on the failed request.

Retry rules under test (``max_retries=2``):

================  ==========================  =====================================
operation         retried after               never retried after
================  ==========================  =====================================
code exchange     connection refused          anything that may have reached it
refresh           refused, 429, 503           timeout, reset, 500, 502, 504
revoke, introsp.  all of these                (idempotent: a copy changes nothing)
================  ==========================  =====================================
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from security_support import REDIRECT_URI, USER, SpyStore, Wire, query_of

from whop_oauth import (
    OAuthClient,
    ProviderMetadata,
    RateLimitedError,
    ServerUnavailableError,
    Token,
    TokenManager,
    TransportError,
)
from whop_oauth.stores import StoredToken
from whop_oauth.testing import MockWhop

CLIENT = "app_mock"  # MockWhop's public client: its revocation needs no secret
HTML = b"<html><body>Internal Server Error</html>"
PATHS = {
    "exchange": "/oauth/token",
    "refresh": "/oauth/token",
    "revoke": "/oauth/revoke",
    "introspect": "/oauth/introspect",
}
ENDPOINTS = {"/oauth/token": "token", "/oauth/revoke": "revoke", "/oauth/introspect": "introspect"}


@dataclass(frozen=True)
class Fault:
    error: type[Exception]
    attempts: tuple[int, int, int]  # tries that leave the client: exchange, refresh, others
    acted: bool  # whether the provider did the work before the failure


#: Which column of ``Fault.attempts`` an operation reads (its retry policy).
COLUMN = {"exchange": 0, "refresh": 1, "revoke": 2, "introspect": 2}
FAULTS = {
    "provider down": Fault(TransportError, (3, 3, 3), acted=False),
    "slower than the timeout": Fault(TransportError, (1, 1, 3), acted=True),
    "500": Fault(ServerUnavailableError, (1, 1, 3), acted=False),
    "503": Fault(ServerUnavailableError, (1, 3, 3), acted=False),
    "429 with Retry-After": Fault(RateLimitedError, (1, 3, 3), acted=False),
    "reset before it arrived": Fault(TransportError, (1, 1, 3), acted=False),
    "reset after it was done": Fault(TransportError, (1, 1, 3), acted=True),
    "truncated body": Fault(TransportError, (1, 1, 3), acted=True),
    "504 from a gateway after it was done": Fault(ServerUnavailableError, (1, 1, 3), acted=True),
}


@dataclass
class Rig:
    mock: MockWhop
    wire: Wire
    client: OAuthClient  # the one that meets the fault
    checker: OAuthClient  # a healthy connection to the same provider, for checks afterwards
    browser: httpx.AsyncClient  # a healthy connection too, as the user's browser
    store: SpyStore
    manager: TokenManager
    grant: Token
    stored: StoredToken


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metadata_at(base: str, mock: MockWhop) -> ProviderMetadata:
    paths = {
        k: getattr(mock.metadata, k)
        for k in (
            "token_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "authorization_endpoint",
        )
    }
    moved = {k: v.replace(mock.issuer, base) for k, v in paths.items()}
    return ProviderMetadata(issuer=base, revocation_body="json", **moved)


@asynccontextmanager
async def rig(fault: str) -> AsyncIterator[Rig]:
    """The provider (in-process, or on a real port for timeouts), a client wired to it
    with ``max_retries=2``, and a grant stored for ``USER``."""
    if fault == "slower than the timeout":
        with MockWhop.on_free_port() as mock:
            async with _rig(
                mock, httpx.AsyncHTTPTransport(), mock.metadata, request_timeout=0.15
            ) as r:
                yield r
        return
    mock = MockWhop()
    if fault == "provider down":
        down = _metadata_at(f"http://127.0.0.1:{_closed_port()}", mock)
        async with _rig(mock, httpx.AsyncHTTPTransport(), down) as r:
            yield r
        return
    async with _rig(mock, mock.transport(), mock.metadata) as r:
        yield r


@asynccontextmanager
async def _rig(
    mock: MockWhop,
    inner: httpx.AsyncBaseTransport,
    metadata: ProviderMetadata,
    request_timeout: float = 5,
) -> AsyncIterator[Rig]:
    wire = Wire(inner)
    healthy = mock.transport() if mock.issuer.startswith("https") else None
    async with (
        httpx.AsyncClient(transport=wire) as http,
        httpx.AsyncClient(transport=healthy) as ok,
    ):
        options = {"client_id": CLIENT, "redirect_uri": REDIRECT_URI, "max_retries": 2}
        # A deadline with room for every retry and its backoff: these rows count retries;
        # tests/client/test_deadlines.py shows the deadline cutting them short.
        client = OAuthClient(
            provider=metadata,
            http_client=http,
            timeout=request_timeout,
            deadline=20 * request_timeout,
            **options,
        )
        checker = OAuthClient(provider=mock.metadata, http_client=ok, **options)
        store = SpyStore()
        # The refresh lock's lease must outlast the client's whole deadline.
        manager = TokenManager(client, store, lock_lease=client.deadline + 1)
        body = mock.issue_tokens(USER, client_id=CLIENT)
        grant = Token(body["access_token"], refresh_token=body["refresh_token"], expires_at=None)
        await manager.save(grant, user=USER)
        stored = await store.get(manager.key(user=USER))
        assert stored is not None
        yield Rig(mock, wire, client, checker, ok, store, manager, grant, stored)


Operation = Callable[[], Awaitable[object]]


async def prepare(op: str, r: Rig) -> Operation:
    """Everything the operation needs before the fault (a real code, for the exchange)."""
    if op == "exchange":
        flow = r.client.authorization_request()
        authorize = flow.url.replace(r.client.issuer, r.mock.issuer)
        query = query_of((await r.browser.get(authorize)).headers["location"])
        query["iss"] = r.client.issuer  # the flow's issuer (the down provider's, there)
        return lambda: r.client.complete_authorization(query, flow)
    if op == "refresh":
        return lambda: r.manager.refresh(user=USER)
    if op == "revoke":
        return lambda: r.client.revoke(r.grant)
    return lambda: r.client.introspect(r.grant.access_token)


def inject(fault: str, path: str, r: Rig, times: int) -> None:
    """Exactly as many faults as attempts are expected: a leftover would hit the checks."""
    endpoint = ENDPOINTS[path]
    if fault == "slower than the timeout":
        r.mock.delay_next(endpoint, 0.5, times=times)
    elif fault in ("500", "503"):
        r.mock.fail_next(endpoint, int(fault), HTML, {"content-type": "text/html"}, times=times)
    elif fault == "429 with Retry-After":
        r.mock.fail_next(endpoint, 429, headers={"Retry-After": "7"}, times=times)
    elif fault != "provider down":
        how = {
            "reset before it arrived": "reset before",
            "reset after it was done": "reset after",
            "truncated body": "truncated",
            "504 from a gateway after it was done": "504 after",
        }
        r.wire.break_next(path, how[fault], times=times)  # type: ignore[arg-type]


async def assert_grant_works(r: Rig, *, refreshable: bool) -> None:
    assert (await r.checker.userinfo(r.grant))["sub"] == USER
    if refreshable:
        fresh = await r.checker.refresh(r.grant)
        assert fresh.refresh_token != r.grant.refresh_token


CASES = [pytest.param(op, fault, id=f"{op}, {fault}") for op in PATHS for fault in FAULTS]


@pytest.mark.parametrize(("op", "fault"), CASES)
async def test_a_provider_fault_gives_a_typed_error_retries_only_where_safe_and_keeps_the_grant(
    op: str, fault: str, sleeps: list[float]
) -> None:
    error_type, acted = FAULTS[fault].error, FAULTS[fault].acted
    attempts = FAULTS[fault].attempts[COLUMN[op]]
    path = PATHS[op]
    async with rig(fault) as r:
        operation = await prepare(op, r)
        inject(fault, path, r, attempts)
        before = r.mock.stats

        with pytest.raises(error_type) as caught:
            await operation()

        assert type(caught.value) is error_type
        assert r.wire.hits[path] == attempts  # tries that left the client
        if isinstance(caught.value, RateLimitedError):
            assert caught.value.retry_after == 7
            assert sleeps == [7.0] * (attempts - 1)
        stats = r.mock.stats
        if path == "/oauth/token":  # the ones that reached the provider
            reached = 0 if fault in ("provider down", "reset before it arrived") else attempts
            assert stats.token_requests - before.token_requests == reached
        assert (stats.refresh_reuse_detected, stats.code_reuse_detected) == (0, 0)
        assert await r.store.get(r.manager.key(user=USER)) == r.stored
        assert r.store.writes == [("put", r.manager.key(user=USER))]  # the setup's save only
        revoked = op == "revoke" and acted
        assert r.mock.is_revoked(r.grant.refresh_token or "") is revoked
        if not revoked:
            # A refresh the provider acted on spent the refresh token: its reply was lost.
            await assert_grant_works(r, refreshable=not (op == "refresh" and acted))


async def test_a_provider_that_goes_down_and_comes_back_finds_the_grant_intact() -> None:
    with MockWhop.on_free_port() as mock:
        issuer = mock.issuer
        body = mock.issue_tokens(USER, client_id=CLIENT)
    grant = Token(body["access_token"], refresh_token=body["refresh_token"], expires_at=None)
    async with httpx.AsyncClient() as http:
        client = OAuthClient(
            client_id=CLIENT,
            redirect_uri=REDIRECT_URI,
            provider=mock.metadata,
            http_client=http,
            max_retries=1,
        )
        manager = TokenManager(client, SpyStore())
        await manager.save(grant, user=USER)
        stored = await manager.store.get(manager.key(user=USER))

        with pytest.raises(TransportError):
            await manager.refresh(user=USER)  # the port is closed now
        assert await manager.store.get(manager.key(user=USER)) == stored

        with mock.serve_in_thread():  # back, on the same port, with the same memory
            assert mock.issuer == issuer
            fresh = await manager.refresh(user=USER)
            assert (await client.userinfo(fresh))["sub"] == USER
    assert fresh.refresh_token != grant.refresh_token
