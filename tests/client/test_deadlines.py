"""Every call to the provider has an overall deadline, not only httpx's per-read timeouts.

The providers here are real loopback sockets: one that sends the status line and
headers, then one body byte every half second forever (each read succeeds, so
httpx's read timeout never fires), and one that accepts TCP but never finishes a
TLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from client_support import CLIENT_ID, REDIRECT_URI, SECRET

from whop_oauth import (
    ConfigurationError,
    OAuthClient,
    ProviderMetadata,
    ServerUnavailableError,
    Token,
    TransportError,
)
from whop_oauth import _http as http_module

REFRESH_TOKEN = "rt_drip_secret"
# A bound on how long a test may take: the old code hung here until this fired.
GUARD = 6.0


@dataclass
class Provider:
    """What the loopback provider saw."""

    base: str = ""
    connections: int = 0
    requests: list[str] = field(default_factory=list)  # request lines, complete heads only


@contextlib.asynccontextmanager
async def loopback_provider(*, drip: float = 0.5, scheme: str = "http") -> AsyncIterator[Provider]:
    """``http``: answers every request with headers, then one body byte per ``drip``
    seconds, forever. ``https``: accepts connections and never answers the handshake."""
    seen = Provider()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)  # type: ignore[arg-type]
        seen.connections += 1
        try:
            if scheme == "https":
                await reader.read()  # the ClientHello arrives; no ServerHello ever leaves
                return
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            seen.requests.append(head.split(b"\r\n", 1)[0].decode())
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            while True:
                writer.write(b" ")  # JSON allows leading whitespace: the body is never wrong
                await writer.drain()
                await asyncio.sleep(drip)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up on us, as it should
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen.base = f"{scheme}://127.0.0.1:{port}"
    try:
        yield seen
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def metadata(base: str) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=base,
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        revocation_endpoint=f"{base}/oauth/revoke",
    )


def client_for(base: str, http: httpx.AsyncClient | None = None, **options: float) -> OAuthClient:
    return OAuthClient(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        redirect_uri=REDIRECT_URI,
        provider=metadata(base),
        http_client=http,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the suite's recorded waits: these tests are about real time."""
    monkeypatch.setattr(http_module, "_sleep", asyncio.sleep)


async def test_a_refresh_whose_answer_drips_fails_after_the_timeout_and_is_sent_once() -> None:
    async with loopback_provider() as provider:
        client = client_for(provider.base, timeout=1.0, max_retries=2)
        token = Token("at", refresh_token=REFRESH_TOKEN, expires_at=None)

        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(client.refresh(token), GUARD)
        await client.aclose()

    assert str(caught.value) == "refresh: no complete answer from 127.0.0.1 within 1 s"
    assert REFRESH_TOKEN not in repr(caught.value)
    assert SECRET not in repr(caught.value)
    # The request may have arrived: a second copy could replay a rotated refresh token.
    assert provider.requests == ["POST /oauth/token HTTP/1.1"]


async def test_an_idempotent_call_whose_answer_drips_is_retried_only_until_the_deadline(
    real_sleep: None,
) -> None:
    async with loopback_provider() as provider:
        client = client_for(provider.base, timeout=1.0, deadline=2.0, max_retries=5)

        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(client.revoke("a_token"), GUARD)
        await client.aclose()

    assert str(caught.value) == "revocation: no complete answer from 127.0.0.1 within 2 s"
    # The first attempt used its whole second; the second got what was left of the
    # deadline, and no third was started although max_retries allowed five.
    assert provider.requests == ["POST /oauth/revoke HTTP/1.1"] * 2


async def test_a_tls_handshake_that_never_ends_is_retried_even_for_refresh() -> None:
    async with loopback_provider(scheme="https") as provider:
        client = client_for(provider.base, timeout=1.0, deadline=4.0, max_retries=2)
        token = Token("at", refresh_token=REFRESH_TOKEN, expires_at=None)

        with pytest.raises(TransportError, match=r"ConnectTimeout talking to 127\.0\.0\.1"):
            await asyncio.wait_for(client.refresh(token), GUARD)
        await client.aclose()

    # Stuck in the handshake, no request was written: a retry cannot replay it. (httpx's
    # connect limit ends it inside the attempt's overall timeout, and closes the socket.)
    assert provider.connections == 3


@pytest.mark.parametrize("what", ["refresh", "revoke"])
async def test_a_retry_is_never_waited_for_when_it_would_end_past_the_deadline(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(http_module, "_sleep", sleep)
    monkeypatch.setattr(http_module, "_now", lambda: now[0])
    hits: list[str] = []

    def busy(request: httpx.Request) -> httpx.Response:
        hits.append(request.url.path)
        return httpx.Response(503, headers={"Retry-After": "3"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(busy)) as http:
        client = client_for("https://idp.test", http, timeout=2.0, deadline=5.0, max_retries=5)
        token = Token("at", refresh_token=REFRESH_TOKEN, expires_at=None)
        call = client.refresh(token) if what == "refresh" else client.revoke(token)
        with pytest.raises(ServerUnavailableError):
            await call

    # 0 s: 503, wait 3 s; 3 s: 503, and 3 s more would end at 6 s, past the 5 s deadline.
    assert slept == [3.0]
    assert len(hits) == 2


def test_the_deadline_defaults_to_twice_the_timeout_and_can_be_set() -> None:
    assert client_for("https://idp.test").deadline == 20.0
    assert client_for("https://idp.test", timeout=3.0).deadline == 6.0
    assert client_for("https://idp.test", timeout=3.0, deadline=3.0).deadline == 3.0
    assert client_for("https://idp.test", timeout=3.0, deadline=45).deadline == 45


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 2.0, "deadline": 1.0},
        {"timeout": 2.0, "deadline": 0.0},
        {"timeout": 2.0, "deadline": -5.0},
        {"timeout": 2.0, "deadline": float("nan")},
        {"timeout": 2.0, "deadline": float("inf")},
        {"timeout": 2.0, "deadline": True},
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"timeout": 0},
    ],
    ids=repr,
)
def test_a_deadline_shorter_than_the_timeout_or_not_a_duration_is_refused(
    options: dict[str, float],
) -> None:
    with pytest.raises(ConfigurationError, match=r"timeout|deadline"):
        client_for("https://idp.test", **options)
