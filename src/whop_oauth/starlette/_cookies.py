"""Signed cookies: one per sign-in flow, and the session.

Both are signed and timestamped with itsdangerous under distinct salts, so a flow
cookie can never be replayed as a session. Neither ever holds a token: the flow
cookie holds the authorization request (state, PKCE verifier, nonce, return
path), the session cookie only who is signed in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.datastructures import Secret

from .._bounded import remember
from .._errors import ConfigurationError
from .._scopes import split_scopes

__all__ = [
    "MAX_ID_LENGTH",
    "MIN_KEY_LENGTH",
    "CookieCodec",
    "SessionData",
    "cookie_header",
    "flow_cookie_suffix",
]

#: Shortest accepted signing key: HMAC-SHA256 wants 32 bytes of entropy.
MIN_KEY_LENGTH = 32
FLOW_SALT = "whop_oauth.flow"
SESSION_SALT = "whop_oauth.session"
# Browsers keep ~4096 bytes per cookie, name and attributes included.
_MAX_COOKIE_VALUE = 3800
#: How many verified session cookie values a codec remembers.
_VERIFIED_CACHE_SIZE = 4096
#: Longest user id or tenant a session holds (they are never shortened).
MAX_ID_LENGTH = 255
_MAX_NAME, _MAX_EMAIL, _MAX_PICTURE, _MAX_SCOPES = 200, 254, 2048, 1024
_STATE_PREFIX = re.compile(r"[A-Za-z0-9_\-]{8,}")


@dataclass(frozen=True, slots=True)
class SessionData:
    """Who is signed in: what the session cookie holds (never a token).

    ``session_id`` is random per sign-in and doubles as the CSRF token of forms
    that change the session (sign out); it is not a credential on its own, the
    cookie's signature is.
    """

    session_id: str = field(repr=False)  # the CSRF token: kept out of logs
    user: str
    tenant: str
    login_at: int
    scopes: tuple[str, ...] = ()
    name: str | None = None
    email: str | None = None
    picture: str | None = None

    @classmethod
    def new(cls, user: str, tenant: str, **profile: Any) -> SessionData:
        """A fresh session with a new random id, logged in now."""
        return cls(secrets.token_urlsafe(16), user, tenant, int(time.time()), **profile)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "sid": self.session_id,
            "sub": self.user,
            "ten": self.tenant,
            "iat": self.login_at,
            "scp": " ".join(self.scopes),
        }
        for key, value in (("n", self.name), ("e", self.email), ("p", self.picture)):
            if value:
                payload[key] = value
        return payload

    @classmethod
    def from_payload(cls, payload: Any) -> SessionData | None:
        """Read ``to_payload``'s dict back; ``None`` for anything else."""
        if not isinstance(payload, Mapping):
            return None
        sid, sub, ten, iat = (payload.get(k) for k in ("sid", "sub", "ten", "iat"))
        texts = [payload.get(k, "") for k in ("scp", "n", "e", "p")]
        if not (isinstance(sid, str) and isinstance(sub, str) and isinstance(ten, str)):
            return None
        if not (sid and sub and ten) or type(iat) is not int:
            return None
        if not all(isinstance(t, str) for t in texts):
            return None
        scp, name, email, picture = texts
        return cls(sid, sub, ten, iat, split_scopes(scp), name or None, email or None,
                   picture or None)


def _bounded(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with the profile trimmed: never an identity, never half a scope."""
    bounded = dict(payload)
    if "n" in bounded:
        bounded["n"] = bounded["n"][:_MAX_NAME]  # display only: a shortened name is harmless
    for key, limit in (("e", _MAX_EMAIL), ("p", _MAX_PICTURE)):
        if len(bounded.get(key, "")) > limit:
            del bounded[key]  # a cut email or URL would be wrong, not shorter
    kept: list[str] = []
    for scope in split_scopes(bounded["scp"]):
        # Whole scopes only, so a cut can never turn one scope into another.
        if len(" ".join([*kept, scope])) > _MAX_SCOPES:
            break
        kept.append(scope)
    bounded["scp"] = " ".join(kept)
    return bounded


class CookieCodec:
    """Signs and reads the flow and session cookie values.

    ``secret_keys``: the first key signs, every key verifies, so a new key is put
    first and an old one removed once the cookies it signed have expired.

    >>> codec = CookieCodec(["k" * 32])
    >>> codec.loads_flow(codec.dumps_flow({"state": "abc"}), max_age=600)
    {'state': 'abc'}
    """

    def __init__(self, secret_keys: Sequence[str | Secret]) -> None:
        if isinstance(secret_keys, str | Secret):
            raise ConfigurationError("secret_keys must be a list of keys, not one key")
        keys = [str(key) for key in secret_keys]
        if not keys:
            raise ConfigurationError(
                "secret_keys needs at least one key (with Settings: WHOP_SESSION_SECRETS is "
                "not set; make one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        if any(len(key) < MIN_KEY_LENGTH for key in keys):
            raise ConfigurationError(
                f"every secret key needs at least {MIN_KEY_LENGTH} characters"
            )
        # itsdangerous signs with the *last* key of its list and verifies with all.
        self._flow = self._serializer(keys[::-1], FLOW_SALT)
        self._session = self._serializer(keys[::-1], SESSION_SALT)
        self._session_current = self._serializer(keys[:1], SESSION_SALT)
        # Cookie values already verified, so a returning browser skips the HMAC, base64 and
        # JSON work (over half of the middleware's time). Only verified values get in.
        self._verified: dict[str, tuple[SessionData, bool]] = {}

    @staticmethod
    def _serializer(keys: list[str], salt: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            keys, salt=salt, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def dumps_flow(self, data: Mapping[str, Any]) -> str:
        value: str = self._flow.dumps(dict(data))
        if len(value) > _MAX_COOKIE_VALUE:
            raise ConfigurationError("the sign-in flow does not fit in a cookie")
        return value

    def loads_flow(self, value: str, *, max_age: int) -> dict[str, Any] | None:
        """The flow dict, or ``None`` if tampered, expired or not ours."""
        try:
            data = self._flow.loads(value, max_age=max_age)
        except BadData:
            return None
        return data if isinstance(data, dict) else None

    def flow_timestamp(self, value: str, *, max_age: int) -> float | None:
        """When a flow cookie was signed (Unix time), or ``None`` if it is unusable."""
        try:
            _, signed_at = self._flow.loads(value, max_age=max_age, return_timestamp=True)
        except BadData:
            return None
        return float(signed_at.timestamp())

    def dumps_session(self, session: SessionData) -> str:
        """The signed value; drops the picture, then the profile, if it would not fit."""
        if len(session.user) > MAX_ID_LENGTH or len(session.tenant) > MAX_ID_LENGTH:
            raise ConfigurationError(f"user ids and tenants longer than {MAX_ID_LENGTH} characters")
        payload = _bounded(session.to_payload())
        for drop in ((), ("p",), ("p", "n", "e")):
            trimmed = {k: v for k, v in payload.items() if k not in drop}
            value: str = self._session.dumps(trimmed)
            if len(value) <= _MAX_COOKIE_VALUE:
                return value
        raise ConfigurationError("the session does not fit in a cookie")

    def loads_session(self, value: str, *, max_age: int) -> tuple[SessionData | None, bool]:
        """``(session, signed_with_current_key)``; ``(None, False)`` if unusable.

        A session older than ``max_age`` seconds since sign-in is unusable, even if
        its cookie was re-signed later.
        """
        known = self._verified.get(value)
        if known is not None:
            if known[0].login_at + max_age >= time.time():
                return known
            del self._verified[value]
            return None, False
        current = True
        try:
            data = self._session_current.loads(value, max_age=max_age)
        except BadData:
            current = False
            try:
                data = self._session.loads(value, max_age=max_age)
            except BadData:
                return None, False
        session = SessionData.from_payload(data)
        if session is None or session.login_at + max_age < time.time():
            return None, False
        remember(self._verified, value, (session, current), limit=_VERIFIED_CACHE_SIZE)
        return session, current


def flow_cookie_suffix(state: str) -> str | None:
    """The part of a flow cookie's name taken from the state, or ``None`` if unusable."""
    prefix = state[:16]
    return prefix if _STATE_PREFIX.fullmatch(prefix) else None


def cookie_header(
    name: str,
    value: str,
    *,
    path: str,
    max_age: int,
    secure: bool,
) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure when asked.

    ``max_age=0`` with an empty value deletes the cookie.
    """
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max(max_age, 0)}"]
    if max_age <= 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    parts += ["HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)

