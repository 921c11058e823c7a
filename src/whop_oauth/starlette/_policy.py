"""Cookie and session policy: how the session and flow cookies are named, scoped, read
and written. A leaf: it knows the cookie codec and nothing of routes or middleware."""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from collections.abc import Sequence
from typing import Literal

from starlette.datastructures import Secret
from starlette.requests import HTTPConnection
from starlette.types import Scope

from .._bounded import remember
from ._cookie_header import SessionCookieReader
from ._cookies import CookieCodec, SessionData, cookie_header, flow_cookie_suffix

__all__ = [
    "FLOW_MAX_AGE",
    "MAX_FLOWS",
    "MEMO_HEADER_BYTES",
    "MEMO_SIZE",
    "SESSION_MAX_AGE",
    "CookiePolicy",
    "CookieWrite",
]

logger = logging.getLogger("whop_oauth.starlette")

FLOW_MAX_AGE = 600
#: Sign-ins one browser may have in progress at once (tabs); the oldest gives way.
MAX_FLOWS = 5
SESSION_MAX_AGE = 14 * 24 * 3600
#: What a request does to its session cookie: leave it, (re)set it, or delete it.
CookieWrite = Literal["keep", "set", "clear"]
#: How many distinct ``Cookie`` headers ``read_session`` remembers, and the longest it
#: keeps: 4,096 headers of at most 1 KiB, about 5 MiB at worst (a browser's is usually
#: a few hundred bytes). Longer headers are read every time.
MEMO_SIZE = 4096
MEMO_HEADER_BYTES = 1024


class CookiePolicy:
    """Names, scopes, lifetimes and signing of the session and flow cookies.

    On https both cookies take the ``__Host-`` prefix (``Secure``, ``Path=/``, no
    ``Domain``): no sibling subdomain can plant one, so a flow cookie at the
    callback was set by this app's login in this browser (login CSRF by cookie
    tossing). On http no prefix exists; flow cookies then stay under the path
    login and callback share, so login still sees (and caps) the flows in progress.

    >>> policy = CookiePolicy(["k" * 32], secure=True, flow_paths=("/auth/login", "/cb"))
    >>> policy.session_cookie, policy.flow_cookie_name("abcdefgh12345678xyz")
    ('__Host-whop_session', '__Host-whop_flow_abcdefgh12345678')
    """

    def __init__(
        self,
        secret_keys: Sequence[str | Secret],
        *,
        secure: bool,
        flow_paths: tuple[str, str],
        session_max_age: int = SESSION_MAX_AGE,
    ) -> None:
        self.codec = CookieCodec(secret_keys)
        self.secure = secure
        self.session_max_age = session_max_age
        self.flow_max_age = FLOW_MAX_AGE
        prefix = "__Host-" if secure else ""
        self.session_cookie = prefix + "whop_session"
        self._session_value = SessionCookieReader(self.session_cookie)
        # A request's one Cookie header -> (read_session's answer, the session's login_at).
        self._known: dict[bytes, tuple[tuple[SessionData | None, CookieWrite], int]] = {}
        self._adding = threading.Lock()  # a hit takes no lock
        self._flow_prefix = prefix + "whop_flow_"
        self._flow_path = "/" if secure else posixpath.commonpath(list(flow_paths))

    # -- the session cookie ----------------------------------------------------------

    def read_session(self, scope: Scope) -> tuple[SessionData | None, CookieWrite]:
        """The request's session and what to do with its cookie; unusable ones are dropped.

        A browser sends the same ``Cookie`` header request after request, so the answer
        for a request's one ``Cookie`` header is remembered once its session verified:
        the common case is one dict lookup and a clock reading (the session's age is
        checked every time). Several ``Cookie`` headers, a longer header than
        ``MEMO_HEADER_BYTES`` and an unusable session are read every time. Bounded:
        the oldest of ``MEMO_SIZE`` headers is dropped first.
        """
        header = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                if header is not None:  # several Cookie headers: read every time
                    return self._read_session(scope)
                header = value
        if header is None:  # no Cookie header: signed out
            return None, "keep"
        known = self._known.get(header)
        if known is not None:
            if time.time() <= known[1] + self.session_max_age:
                return known[0]
            # Too old now: read (and refused) below. pop: another thread's request with
            # the same header may have dropped it first.
            self._known.pop(header, None)
        answer = self._read_session(scope)
        session = answer[0]
        if session is not None and len(header) <= MEMO_HEADER_BYTES:
            with self._adding:
                remember(self._known, header, (answer, session.login_at), limit=MEMO_SIZE)
        return answer

    def _read_session(self, scope: Scope) -> tuple[SessionData | None, CookieWrite]:
        raw = self._session_value(scope["headers"])
        if raw is None:
            return None, "keep"
        session, current = self.codec.loads_session(raw, max_age=self.session_max_age)
        if session is None:
            logger.info("ignoring an invalid or expired session cookie")
            return None, "clear"
        return session, "keep" if current else "set"  # re-signed with the current key

    def session_cookie_header(self, session: SessionData | None) -> str:
        """``Set-Cookie`` for ``session``, or deleting the cookie for ``None``."""
        if session is None:
            return cookie_header(self.session_cookie, "", path="/", max_age=0, secure=self.secure)
        remaining = session.login_at + self.session_max_age - int(time.time())
        return cookie_header(
            self.session_cookie,
            self.codec.dumps_session(session),
            path="/",
            max_age=remaining,
            secure=self.secure,
        )

    # -- flow cookies ------------------------------------------------------------------

    def flow_cookie_name(self, state: str) -> str | None:
        """The flow cookie's name for ``state`` (two tabs, two cookies), or ``None``."""
        suffix = flow_cookie_suffix(state)
        return None if suffix is None else self._flow_prefix + suffix

    def flow_cookie_header(self, conn: HTTPConnection, name: str, value: str | None) -> str:
        """``Set-Cookie`` for a flow cookie, or deleting it for ``None``."""
        # A __Host- cookie must have Path=/, whatever prefix the app is mounted under.
        root = "" if self.secure else conn.scope.get("root_path", "").rstrip("/")
        path = root + self._flow_path if self._flow_path != "/" else root or "/"
        return cookie_header(
            name,
            value or "",
            path=path,
            max_age=self.flow_max_age if value else 0,
            secure=self.secure,
        )

    def stale_flow_cookies(self, conn: HTTPConnection) -> list[str]:
        """Flow cookies to drop so that, with a new one, at most ``MAX_FLOWS`` remain.

        Abandoned sign-ins would otherwise pile up for ten minutes and could make
        the callback's ``Cookie`` header too large for the server.
        """
        dead: list[str] = []
        live: list[tuple[float, str]] = []
        for name, value in conn.cookies.items():
            if name.startswith(self._flow_prefix):
                started = self.codec.flow_timestamp(value, max_age=self.flow_max_age)
                if started is None:
                    dead.append(name)
                else:
                    live.append((started, name))
        live.sort()
        excess = max(len(live) - (MAX_FLOWS - 1), 0)
        return dead + [name for _, name in live[:excess]]
