"""Shared pieces for the store tests: MockWhop on a loopback port with extra faults, sign-in."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import anyio
import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from whop_oauth import OAuthClient, Token, whop_metadata
from whop_oauth.testing import MockWhop

CLIENT_ID = "app_mock"
REDIRECT_URI = "http://127.0.0.1/callback"
USER = "user_mock1"

Action = Literal["stall", "reset", "slow"]


class FaultyProvider:
    """MockWhop plus two faults it lacks, both on the token endpoint and both *before*
    the request is processed (so the refresh token is not consumed):

    - ``stall``: hold the request until the client hangs up (a timeout, or a killed
      process), then drop it unanswered;
    - ``reset``: start a response, send half a body, and cut the connection;
    - ``slow``: process the request normally, but only ``slow_seconds`` after it came.
    """

    def __init__(self, mock: MockWhop) -> None:
        self.mock = mock
        self._actions: deque[Action] = deque()
        self._lock = threading.Lock()
        self.stalled = threading.Event()  #: set when a stalled or slowed request has arrived
        self.slow_seconds = 1.0

    def next_token_request(self, action: Action) -> None:
        with self._lock:
            self._actions.append(action)

    def _take(self) -> Action | None:
        with self._lock:
            return self._actions.popleft() if self._actions else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        action = None
        if scope["type"] == "http" and scope["path"] == "/oauth/token":
            action = self._take()
        if action == "stall":
            await _drain(receive)
            self.stalled.set()
            with anyio.move_on_after(30):
                while (await receive())["type"] != "http.disconnect":
                    pass
            return
        if action == "slow":
            self.stalled.set()
            await anyio.sleep(self.slow_seconds)
        if action == "reset":
            await _drain(receive)
            headers = [(b"content-type", b"application/json"), (b"content-length", b"300")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b'{"access_token": "x', "more_body": True}
            )
            raise ConnectionResetError("injected connection reset")
        await self.mock(scope, receive, send)


async def _drain(receive: Receive) -> None:
    message: Message = {"more_body": True}
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own handlers
        pass


@contextmanager
def serve_provider() -> Iterator[FaultyProvider]:
    """A ``FaultyProvider`` around a fresh MockWhop, served on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    provider = FaultyProvider(MockWhop(f"http://127.0.0.1:{sock.getsockname()[1]}"))
    config = uvicorn.Config(provider, log_config=None, access_log=False, lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the provider did not start")
        time.sleep(0.005)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def make_client(issuer: str, http: httpx.AsyncClient, **options: object) -> OAuthClient:
    """The real OAuthClient, pointed at a MockWhop issuer."""
    return OAuthClient(
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        provider=whop_metadata(issuer),
        http_client=http,
        **options,  # type: ignore[arg-type]
    )


async def sign_in(client: OAuthClient, http: httpx.AsyncClient) -> Token:
    """A grant obtained through the real code flow (the mock approves at once)."""
    flow = client.authorization_request()
    response = await http.get(flow.url, follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    query = httpx.URL(response.headers["location"]).query.decode()
    return await client.complete_authorization(query, flow)


def expired(token: Token) -> Token:
    """The same grant, as if its access token had expired a second ago."""
    return dataclasses.replace(token, expires_at=time.time() - 1)
