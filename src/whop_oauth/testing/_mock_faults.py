"""Fault injection: canned error responses, delays and dropped connections queued per
endpoint, and ``FaultControls``, the ``MockWhop`` methods that queue them."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from starlette.responses import Response

__all__ = ["ENDPOINTS", "Drop", "Fault", "FaultControls", "Faults"]

#: How ``MockWhop.drop_next`` loses a request: ``stall`` reads it and never answers
#: (until the client hangs up); ``reset`` sends half an answer and cuts the connection.
Drop = Literal["stall", "reset"]

#: Names accepted by ``MockWhop.fail_next`` / ``delay_next`` / ``drop_next`` / ``hold_next``.
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
    """One queued fault: a replacement response (``status``), a delay after the work
    (``delay``) or before it (``hold``), or a connection dropped before the work."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    delay: float = 0.0
    hold: float = 0.0
    drop: Drop | None = None

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
        #: Set once a request has taken a held or dropped fault (it has arrived).
        self.arrived = threading.Event()

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
            fault = queue.popleft() if queue else None
        if fault is not None and (fault.drop is not None or fault.hold):
            self.arrived.set()
        return fault


class FaultControls:
    """The ``MockWhop`` methods that queue faults on its endpoints."""

    _faults: Faults

    def fail_next(
        self,
        endpoint: str,
        status: int,
        body: bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Replace the next ``times`` responses of ``endpoint`` (``"token"``, ``"userinfo"``,
        ``"revoke"``, ``"introspect"``, ``"api"``...). Nothing is processed.

        ```python
        mock.fail_next("token", 429, headers={"Retry-After": "2"})
        ```
        """
        self._faults.add(endpoint, Fault.error(status, body, headers), times)

    def delay_next(self, endpoint: str, seconds: float, times: int = 1) -> None:
        """Process the next requests normally but answer ``seconds`` late (a lost reply)."""
        self._faults.add(endpoint, Fault(status=None, delay=seconds), times)

    def hold_next(self, endpoint: str, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before processing the next requests (a slow provider: nothing
        is consumed until then)."""
        self._faults.add(endpoint, Fault(status=None, hold=seconds), times)

    def drop_next(self, endpoint: str, how: Drop, times: int = 1) -> None:
        """Lose the next requests of ``endpoint`` before processing them (nothing is
        consumed): ``"stall"`` never answers, ``"reset"`` cuts the connection mid-answer.

        Meant for a mock on a real port (``MockWhop.on_free_port()``): a stalled request
        ends when the client gives up. In-process, a reset raises ``httpx.RemoteProtocolError``
        in the client, as a cut connection would.

        ```python
        mock.drop_next("token", "reset")
        ```
        """
        if how not in get_args(Drop):
            raise ValueError(f"how is one of {list(get_args(Drop))}")
        self._faults.add(endpoint, Fault(status=None, drop=how), times)

    def wait_for_fault(self, timeout: float) -> bool:
        """Block until a request has taken a ``hold_next`` or ``drop_next`` fault (it has
        reached the provider); False if none did within ``timeout`` seconds."""
        return self._faults.arrived.wait(timeout)
