"""Connections the mock loses on purpose (``MockWhop.drop_next``): raw ASGI answers that a
``Response`` cannot give, sent before the request is processed."""

from __future__ import annotations

import anyio
import httpx
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ._mock_faults import Drop

__all__ = ["DroppedResponse"]

#: How long a stalled request waits for its client to hang up.
STALL_LIMIT = 30.0


class DroppedResponse(Response):
    """Answers nothing (``stall``) or half an answer, then a cut connection (``reset``)."""

    def __init__(self, how: Drop) -> None:
        super().__init__()
        self.how = how

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await _drain(receive):
            return
        if self.how == "stall":
            with anyio.move_on_after(STALL_LIMIT):
                while (await receive())["type"] != "http.disconnect":
                    pass
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"300")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b'{"access_token": "x', "more_body": True}
        )
        # A server drops the connection; in-process, the client gets what httpx raises then.
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )


async def _drain(receive: Receive) -> bool:
    """Read the request body; False if the client hung up meanwhile."""
    message: Message = {"more_body": True}
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
    return True
