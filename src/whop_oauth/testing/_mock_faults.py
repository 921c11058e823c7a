"""Fault injection: canned error responses and delays queued per endpoint."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

__all__ = ["ENDPOINTS", "Fault", "Faults"]

#: Names accepted by ``MockWhop.fail_next`` / ``delay_next``.
ENDPOINTS = frozenset(
    {
        "authorize",
        "token",
        "userinfo",
        "revoke",
        "introspect",
        "register",
        "api",
        "jwks",
        "discovery",
    }
)


def _default_body(status: int) -> dict[str, str]:
    if status == 429:
        return {"error": "rate_limit_exceeded", "error_description": "Too many requests"}
    if status == 503:
        return {"error": "temporarily_unavailable", "error_description": "Try again later"}
    if status >= 500:
        return {"error": "server_error", "error_description": "Injected server error"}
    return {"error": "invalid_request", "error_description": "Injected error"}


@dataclass(frozen=True, slots=True)
class Fault:
    """One queued fault: a replacement response (``status``) and/or a delay."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    delay: float = 0.0

    @classmethod
    def error(
        cls, status: int, body: bytes | Mapping[str, Any] | None, headers: Mapping[str, str] | None
    ) -> Fault:
        if body is None:
            body = _default_body(status)
        raw = body if isinstance(body, bytes) else json.dumps(dict(body)).encode()
        return cls(status=status, body=raw, headers=dict(headers or {}))

    def response(self) -> Response:
        assert self.status is not None
        headers = {"content-type": "application/json", "cache-control": "no-store"}
        headers.update({k.lower(): v for k, v in (self.headers or {}).items()})
        return Response(self.body, status_code=self.status, headers=headers)


class Faults:
    """Per-endpoint FIFO queues; each request to an endpoint takes at most one fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, endpoint: str, fault: Fault, times: int) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(ENDPOINTS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queues.setdefault(endpoint, deque()).extend([fault] * times)

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._queues.get(endpoint)
            return queue.popleft() if queue else None
