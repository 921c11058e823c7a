"""The pure ASGI middleware: reads the session cookie, writes it back when changed."""

from __future__ import annotations

import logging

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import SignInRequired, TokenStoreError
from .._session_registry import Miss
from ..stores._sessions import SessionRecord
from ._backend import credentials
from ._pages import NO_CACHE_HEADERS
from ._site import Site
from ._state import SCOPE_KEY, AuthState

__all__ = ["WhopAuthMiddleware"]

logger = logging.getLogger("whop_oauth.starlette")

#: The answer while the session store cannot be read: nobody is signed in or out by it.
STORE_UNAVAILABLE = PlainTextResponse(
    "Service unavailable, please try again.", 503, headers=NO_CACHE_HEADERS
)


class WhopAuthMiddleware:
    """Reads the signed session cookie and sets ``request.user`` / ``request.auth``.

    Install it through ``WhopAuth.middleware``. It sets ``scope["user"]`` and
    ``scope["auth"]`` as Starlette's ``AuthenticationMiddleware`` would with
    ``WhopAuthBackend`` (so ``@requires`` works), without that extra layer.
    A tampered, expired or undecodable cookie is treated as signed out (and
    deleted), never as an error; so is one whose server-side session was ended
    (signed out, here or in another process within ``SessionRegistry``'s window
    of at most 5 s).
    An endpoint that raises ``SignInRequired`` (the user's grant is gone) gets the
    session cleared and a redirect to the login page (or a 401 for non-HTML
    clients), if the response has not started yet.

    >>> app = Starlette(routes=whop.routes, middleware=[whop.middleware])  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site
        self._sessions = site.manager.sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session, write = self.site.cookies.read_session(scope)
        state = AuthState(self.site, session, write=write)
        if session is not None:
            # Is the session still on? A dict lookup while remembered, else the store.
            record = self._sessions.peek(session.session_id)
            if isinstance(record, Miss):
                try:
                    record = await self._sessions.get(session.session_id)
                except TokenStoreError as exc:
                    if scope["type"] == "websocket":
                        raise
                    logger.warning("session store unavailable: %s", type(exc).__name__)
                    await STORE_UNAVAILABLE(scope, receive, send)
                    return
            if record is None or record.key.user != session.user or (
                record.key.tenant != session.tenant
            ):
                _sign_out(state, record)
        scope[SCOPE_KEY] = state
        scope["auth"], scope["user"] = credentials(state.session)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                header = state.cookie_header()
                if header is not None:
                    headers = MutableHeaders(scope=message)
                    headers.append("Set-Cookie", header)
                    headers.add_vary_header("Cookie")
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except SignInRequired as exc:
            if started:
                raise
            logger.info("sign-in required (%s): clearing the session", type(exc).__name__)
            if state.session is not None:
                try:
                    await self._sessions.end(state.session.session_id)  # its grant is gone
                except TokenStoreError as error:
                    logger.warning("could not end the session: %s", type(error).__name__)
            state.clear_session()
            response = self.site.sign_in_required_response(HTTPConnection(scope))
            await response(scope, receive, send_wrapper)


def _sign_out(state: AuthState, record: SessionRecord | None) -> None:
    """Sign the request out: its server-side session was ended or names someone else."""
    if record is None:
        logger.info("the session was ended (signed out or signed in again): signed out")
    else:
        logger.warning("a session cookie names another user than its record: signed out")
    state.clear_session()
