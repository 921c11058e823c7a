"""The provider's side of the soak: a MockWhop that logs every refresh it handles.

A client can only say what it sent and what it heard back; whether a request it gave
up on still reached the provider, and in which order two presentations of one refresh
token were handled, only the provider knows. Each refresh request carries the
``x-soak-attempt`` header its sender's ``ProbedTransport`` added, so the two sides
join exactly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from soak_probes import EventLog, fp, refresh_token_in
from starlette.types import Message, Receive, Scope, Send

from whop_oauth.testing import MockWhop

#: The mock's ``error_description`` for a replayed refresh token, and for a dead grant.
_REUSE = "already used"
_REVOKED = "was revoked"


class ObservedWhop(MockWhop):
    """``MockWhop`` plus a ``mock.jsonl`` line per refresh: attempt, token, verdict."""

    log: EventLog | None = None

    def observe(self, folder: Path) -> None:
        self.log = EventLog(folder / "mock.jsonl", "mock")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.log is None or scope["type"] != "http" or scope["path"] != "/oauth/token":
            await super().__call__(scope, receive, send)
            return
        messages, body = await _read_body(receive)
        if messages[-1]["type"] == "http.disconnect":
            return  # the sender gave up before its request was whole: nothing was handled
        pending = iter(messages)

        async def replay() -> Message:
            return next(pending, None) or await receive()

        answer: dict[str, Any] = {"status": 0, "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
            await send(message)

        arrived = time.monotonic()
        await super().__call__(scope, replay, capture)
        presented = refresh_token_in(body)
        if presented is None:
            return
        headers = dict(scope["headers"])
        verdict, fresh = _verdict(answer["status"], answer["body"])
        self.log.write(
            "mock_refresh",
            attempt=headers.get(b"x-soak-attempt", b"").decode(),
            arrived=arrived,
            rt=fp(presented),
            verdict=verdict,
            new_rt=fp(fresh),
        )


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return messages, body


def _verdict(status: int, body: bytes) -> tuple[str, str | None]:
    """``rotated``, ``reuse`` (the grant is revoked now), ``revoked`` (it already was)..."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"http_{status}", None
    if not isinstance(answer, dict):
        return f"http_{status}", None
    if status == 200:
        return "rotated", answer.get("refresh_token")
    description = str(answer.get("error_description", ""))
    if _REUSE in description:
        return "reuse", None
    if _REVOKED in description:
        return "revoked", None
    return str(answer.get("error", f"http_{status}")), None
