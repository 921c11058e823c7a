"""One attempt on the wire: no cookies, no redirects, the body read under a cap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ._errors import InvalidResponseError
from ._no_cookies import without_cookies

__all__ = ["send_once"]

# Headers describing the wire encoding of a body we have already decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def send_once(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None,
    data: Mapping[str, str] | None,
    json: Any,
    auth: httpx.Auth | None,
    io_timeout: httpx.Timeout,
    max_bytes: int,
) -> httpx.Response:
    """Send one request and return its response with the whole (capped) body read.

    >>> response = await send_once(client, "GET", url, headers=None, data=None, json=None,
    ...     auth=None, io_timeout=httpx.Timeout(5.0), max_bytes=10_000)  # doctest: +SKIP
    """
    # Requests may carry a user's grant: no jar cookie goes out, no Set-Cookie is kept.
    client = without_cookies(client)
    request = client.build_request(
        method,
        url,
        headers=headers,
        data=data,
        json=json,
        timeout=io_timeout,  # httpx's limits per connect, write and read
    )
    # Redirects are never followed: a token request or a bearer must not travel on.
    response = await client.send(
        request, stream=True, follow_redirects=False, auth=auth or httpx.USE_CLIENT_DEFAULT
    )
    try:
        body = await _read_capped(response, max_bytes)
    finally:
        await response.aclose()
    headers_out = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in _WIRE_HEADERS
    ]
    return httpx.Response(
        response.status_code, headers=headers_out, content=body, request=response.request
    )


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise InvalidResponseError(f"response larger than {cap} bytes", response=response)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise InvalidResponseError(f"response larger than {cap} bytes", response=response)
        chunks.append(chunk)
    return b"".join(chunks)
