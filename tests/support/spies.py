"""Spies between the library and its provider: a wire that counts (and can break) every
request the library makes, and a store that records every grant write."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Literal

import httpx

from whop_oauth import Token, TokenKey
from whop_oauth.stores import Lease, MemoryTokenStore, StoredToken, TokenStore

#: What the wire can do to one request instead of delivering it normally.
Break = Literal["reset before", "reset after", "truncated", "504 after"]


class _TruncatedBody(httpx.AsyncByteStream):
    """Half of a body, then the connection drops (what httpx raises for a short read)."""

    def __init__(self, part: bytes) -> None:
        self._part = part

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._part
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )


class Wire(httpx.AsyncBaseTransport):
    """Sits between the library and the provider: counts requests by path, keeps their
    bodies, and breaks the ones it was told to."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.hits: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []  # every response body the provider sent
        self._plan: dict[str, deque[Break]] = {}

    def break_next(self, path: str, how: Break, times: int = 1) -> None:
        self._plan.setdefault(path, deque()).extend([how] * times)

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] += 1
        await request.aread()
        self.requests.append(request)
        plan = self._plan.get(path)
        how = plan.popleft() if plan else None
        if how == "reset before":
            raise httpx.ReadError("[Errno 104] Connection reset by peer")
        response = await self.inner.handle_async_request(request)
        # The raw bytes: the client decodes any Content-Encoding itself, as on a real wire.
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        self.bodies.append(body)
        if how == "reset after":  # the provider did the work; its answer is lost
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if how == "504 after":  # a gateway gave up waiting, after the provider did the work
            return httpx.Response(504, content=b"<html>Gateway Time-out</html>", request=request)
        if how == "truncated":
            headers = [(k, v) for k, v in response.headers.multi_items()]
            stream = _TruncatedBody(body[: len(body) // 2])
            return httpx.Response(response.status_code, headers=headers, stream=stream)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class SpyStore:
    """A ``TokenStore`` that records every write it passes on."""

    def __init__(self, inner: TokenStore | None = None) -> None:
        self.inner = inner if inner is not None else MemoryTokenStore()
        self.writes: list[tuple[str, TokenKey]] = []

    def __repr__(self) -> str:
        return f"<SpyStore {self.inner!r}>"

    async def get(self, key: TokenKey) -> StoredToken | None:
        return await self.inner.get(key)

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        self.writes.append(("put", key))
        return await self.inner.put(key, token, expected_version=expected_version, fence=fence)

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        self.writes.append(("delete", key))
        return await self.inner.delete(key, expected_version=expected_version)

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[Lease]:
        return self.inner.lock(key, lease=lease, timeout=timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()
