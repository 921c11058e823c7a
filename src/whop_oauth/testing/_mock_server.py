"""Serving an ASGI app with uvicorn on an already-bound loopback socket, in a thread.

Binding the socket first gives the port before the app is built, so a mock's issuer
can name the real port with no bind-close-rebind race.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["bind_socket", "serve_socket", "url_host"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)``; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    def run_then_release(self, sock: socket.socket) -> None:
        try:
            self.run(sockets=[sock])
        finally:
            self.ready.set()  # wake the starter even if startup failed


@contextmanager
def serve_socket(app: ASGIApp, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` on ``sock`` in a daemon thread until the block exits."""
    config = uvicorn.Config(
        app,
        log_config=None,  # leave the host process's logging alone
        access_log=False,  # access lines would carry ?code=… query strings
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    thread = threading.Thread(
        target=server.run_then_release, args=(sock,), name="mock-whop", daemon=True
    )
    thread.start()
    server.ready.wait()
    try:
        if not server.started:
            raise RuntimeError("the mock Whop server did not start")
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
