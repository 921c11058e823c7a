"""Catching the newcomer's "localhost vs 127.0.0.1" at the login route.

The flow cookie is set on the origin the browser used for ``/auth/login``; the
provider sends the browser back to the redirect URI's origin. When the two differ
the cookie is not there and the callback can only say "Sign-in link expired". On
loopback hosts (a development machine) the login is moved to the redirect URI's
origin, with a WARNING saying what to fix; elsewhere (behind a proxy the app may
see an internal address) it is only logged, once.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._urls import is_loopback_host
from ._pages import NO_CACHE_HEADERS
from ._redirects import origin_of

__all__ = ["OriginCheck"]

logger = logging.getLogger("whop_oauth.starlette")


class OriginCheck:
    """Compares each login request's origin with the redirect URI's.

    >>> check = OriginCheck("http://127.0.0.1:8000/auth/callback")
    >>> check.expected
    'http://127.0.0.1:8000'
    """

    def __init__(self, redirect_uri: str) -> None:
        self.expected = origin_of(redirect_uri)
        self._loopback = is_loopback_host(urlsplit(redirect_uri).hostname)
        self._told = False

    def response(self, request: Request) -> Response | None:
        """A redirect to the same login URL on the redirect URI's origin, or None."""
        here = origin_of(str(request.base_url))
        if here == self.expected:
            return None
        host = urlsplit(here).hostname or ""
        if self._loopback and is_loopback_host(host):
            logger.warning(
                "sign-in started at %s but the redirect URI (WHOP_REDIRECT_URI) is on %s: "
                "the sign-in cookie would be set on the wrong origin. Sending the browser "
                "to %s; browse that address, or register and configure a redirect URI on %s",
                here,
                self.expected,
                self.expected,
                here,
            )
            query = f"?{request.url.query}" if request.url.query else ""
            target = f"{self.expected}{request.url.path}{query}"
            return RedirectResponse(target, status_code=303, headers=NO_CACHE_HEADERS)
        if not self._told:
            self._told = True
            logger.warning(
                "a login request reached this app as %s but the redirect URI is on %s. Behind "
                "a proxy that passes no Host header this is expected; otherwise the browser "
                "comes back without its sign-in cookie ('Sign-in link expired'): serve the "
                "app on the redirect URI's origin",
                here,
                self.expected,
            )
        return None
