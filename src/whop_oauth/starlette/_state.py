"""One request's sign-in state, kept in the ASGI scope by the middleware."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from .._errors import MiddlewareNotInstalled
from ._cookies import SessionData
from ._policy import CookieWrite
from ._site import Site

__all__ = ["SCOPE_KEY", "AuthState", "auth_state"]

#: Where the middleware puts the request's ``AuthState`` in the ASGI scope.
SCOPE_KEY = "whop_oauth"


class AuthState:
    """One request's sign-in state: the session read, and what to write back.

    The middleware writes at most one ``Set-Cookie`` for the session, after the
    endpoint ran, so an endpoint that signs in or out simply calls
    ``set_session`` / ``clear_session``.
    """

    __slots__ = ("_write", "return_path", "session", "site")

    def __init__(
        self, site: Site, session: SessionData | None, *, write: CookieWrite = "keep"
    ) -> None:
        self.site = site
        self.session = session
        #: Where this request's sign-in was going (set by login and callback), so that a
        #: "try again" link after a failed sign-in returns the user there.
        self.return_path: str | None = None
        # "clear" for an unusable cookie, "set" for one signed with an old key.
        self._write: CookieWrite = write

    def set_session(self, session: SessionData) -> None:
        """Sign ``session`` in: its cookie is set on this response."""
        self.session = session
        self._write = "set"

    def clear_session(self) -> None:
        """Sign out: the cookie is deleted on this response."""
        self.session = None
        self._write = "clear"

    def cookie_header(self) -> str | None:
        """The ``Set-Cookie`` to send, or ``None`` when the cookie stays as it is."""
        if self._write == "clear":
            return self.site.cookies.session_cookie_header(None)
        if self._write == "set" and self.session is not None:
            return self.site.cookies.session_cookie_header(self.session)
        return None


def auth_state(conn: HTTPConnection) -> AuthState:
    """The request's ``AuthState``; raises ``MiddlewareNotInstalled`` without the middleware."""
    state = conn.scope.get(SCOPE_KEY)
    if not isinstance(state, AuthState):
        raise MiddlewareNotInstalled(
            "whop_oauth's middleware is not installed: pass WhopAuth(...).middleware "
            "to Starlette(middleware=[...]) (or FastAPI(middleware=[...]))"
        )
    return state
