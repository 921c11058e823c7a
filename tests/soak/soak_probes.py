"""What a soak process records: one JSON line per event, in its own file, no token values.

Tokens appear only as ``fp()``: the first 12 hex digits of their SHA-256. Times are
``time.monotonic()``, which on Linux is one clock for every process of the host, so
events of different processes can be ordered.

``ProbedStore`` wraps a token store and logs every read, write and lock with the
row's version; ``ProbedTransport`` wraps the HTTP transport and logs every refresh
request (the refresh token presented) and its outcome (the token that replaced it).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs

import httpx

from whop_oauth import Token, TokenKey
from whop_oauth.stores import StoredToken, TokenStore

#: The (tenant, user) a task is acting for; refresh tasks inherit it from their caller.
acting_for: contextvars.ContextVar[str] = contextvars.ContextVar("acting_for", default="?")


def fp(secret: str | None) -> str | None:
    """A short, one-way fingerprint: enough to tell tokens apart, useless to an attacker."""
    return None if secret is None else hashlib.sha256(secret.encode()).hexdigest()[:12]


def key_name(tenant: str, user: str) -> str:
    return f"{tenant}/{user}"


class EventLog:
    """Appends one JSON object per line to this process's own file, flushed per line."""

    def __init__(self, path: Path, process: str) -> None:
        self.process = process
        self._file: TextIO = path.open("a", buffering=1, encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        line = {"t": time.monotonic(), "ev": event, "p": self.process, **fields}
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


def _token_fields(token: Token | None) -> dict[str, Any]:
    if token is None:
        return {"rt": None, "at": None}
    return {"rt": fp(token.refresh_token), "at": fp(token.access_token), **life_left(token)}


def life_left(token: Token) -> dict[str, float | None]:
    """Seconds of validity left now, and granted in all (no expiry: ``None``)."""
    if token.expires_at is None:
        return {"left": None, "life": None}
    return {"left": token.expires_at - time.time(), "life": token.expires_at - token.issued_at}


class ProbedStore:
    """A ``TokenStore`` that logs what passes through it (the manager uses it as is)."""

    def __init__(self, inner: TokenStore, log: EventLog) -> None:
        self._inner = inner
        self._log = log

    async def get(self, key: TokenKey) -> StoredToken | None:
        started = time.monotonic()
        stored = await self._inner.get(key)
        version = 0 if stored is None else stored.version
        token = None if stored is None else stored.token
        fields = _token_fields(token)
        self._log.write("get", k=key_name(key.tenant, key.user), t0=started, v=version, **fields)
        return stored

    async def put(self, key: TokenKey, token: Token, **options: Any) -> StoredToken:
        started = time.monotonic()
        expected = options.get("expected_version")
        fields = {"k": key_name(key.tenant, key.user), "t0": started, "exp": expected}
        try:
            stored = await self._inner.put(key, token, **options)
        except Exception as error:
            self._log.write("put_failed", error=type(error).__name__, **fields)
            raise
        self._log.write("put", v=stored.version, **fields, **_token_fields(token))
        return stored

    async def delete(self, key: TokenKey, **options: Any) -> bool:
        started = time.monotonic()
        deleted = await self._inner.delete(key, **options)
        name = key_name(key.tenant, key.user)
        self._log.write("delete", k=name, t0=started, deleted=deleted)
        return deleted

    async def aclose(self) -> None:
        await self._inner.aclose()

    @asynccontextmanager
    async def lock(self, key: TokenKey, **options: Any) -> AsyncIterator[Any]:
        name = key_name(key.tenant, key.user)
        async with self._inner.lock(key, **options) as lease:
            generation = getattr(lease, "generation", None)
            self._log.write("locked", k=name, gen=generation)
            try:
                yield None if lease is None else ProbedLease(lease, self._log, name)
            finally:
                self._log.write("unlocking", k=name, gen=generation)


class ProbedLease:
    """Logs ``reserve()``: the holder's last check before it presents a refresh token."""

    def __init__(self, inner: Any, log: EventLog, name: str) -> None:
        self._inner = inner
        self._log = log
        self._name = name

    @property
    def generation(self) -> int:
        return int(self._inner.generation)

    async def reserve(self, seconds: float, **options: Any) -> None:
        await self._inner.reserve(seconds, **options)
        self._log.write("reserved", k=self._name, seconds=seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ProbedTransport(httpx.AsyncBaseTransport):
    """Logs each refresh request: the refresh token sent, then what came back."""

    def __init__(self, inner: httpx.AsyncBaseTransport, log: EventLog) -> None:
        self._inner = inner
        self._log = log
        self._sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        presented = refresh_token_in(await request.aread()) if _is_token(request) else None
        if presented is None:
            return await self._inner.handle_async_request(request)
        self._sent += 1
        attempt = {"k": acting_for.get(), "n": self._sent, "rt": fp(presented)}
        request.headers["x-soak-attempt"] = f"{self._log.process}:{self._sent}"
        self._log.write("refresh_sent", **attempt)
        try:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
        except BaseException as error:  # cancelled by a deadline, or a transport error
            self._log.write("refresh_done", outcome=type(error).__name__, **attempt)
            raise
        outcome, fresh = _outcome(response.status_code, body)
        self._log.write("refresh_done", outcome=outcome, new_rt=fp(fresh), **attempt)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _is_token(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/oauth/token")


def refresh_token_in(body: bytes) -> str | None:
    try:
        if body.startswith(b"{"):
            params = json.loads(body)
        else:
            params = {name: values[0] for name, values in parse_qs(body.decode()).items()}
    except ValueError:
        return None
    if not isinstance(params, dict) or params.get("grant_type") != "refresh_token":
        return None
    value = params.get("refresh_token")
    return value if isinstance(value, str) else None


def _outcome(status: int, body: bytes) -> tuple[str, str | None]:
    try:
        answer = json.loads(body)
    except ValueError:
        return f"http_{status}", None
    if status == 200 and isinstance(answer, dict):
        return "ok", answer.get("refresh_token")
    error = answer.get("error") if isinstance(answer, dict) else None
    return (str(error) if error else f"http_{status}"), None
