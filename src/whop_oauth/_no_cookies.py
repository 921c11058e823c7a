"""HTTP clients that keep no cookies.

httpx clients keep a cookie jar: every ``Set-Cookie`` a response carries is stored
and sent again on later requests to that host. A client shared by many users (the
pooled client of ``user_http_client``, or the one ``OAuthClient`` sends every
user's refresh through) would carry one user's cookie on the next user's request.
"""

from __future__ import annotations

import copy
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.request import Request

import httpx

__all__ = ["NoCookieJar", "new_http_client", "without_cookies"]


class NoCookieJar(CookieJar):
    """A cookie jar that keeps nothing, so it never has anything to send.

    >>> client = httpx.AsyncClient(cookies=NoCookieJar())
    """

    def extract_cookies(self, response: Any, request: Request) -> None:
        return  # what a response sets is not stored: the next request may be another user's

    def set_cookie(self, cookie: Cookie) -> None:
        return  # every way into a CookieJar ends here, ``client.cookies.set(...)`` included


def new_http_client(**options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with ``options`` and a jar that keeps no cookies.

    >>> client = new_http_client(follow_redirects=False)
    """
    return httpx.AsyncClient(cookies=NoCookieJar(), **options)


def without_cookies(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` if it keeps no cookies, else a view of it that neither sends nor keeps any.

    httpx stores a response's cookies in the client before any hook or auth flow sees
    the response, so an injected client's jar cannot be guarded per request. The view
    is a shallow copy: it shares the connection pool, proxies, TLS settings, headers,
    event hooks and open/closed state of ``client``, and has a jar of its own that
    keeps nothing. The caller's client and its jar are left exactly as they were.

    >>> view = without_cookies(httpx.AsyncClient(cookies={"a": "1"}))
    >>> len(view.cookies)
    0
    """
    if isinstance(client.cookies.jar, NoCookieJar):
        return client
    view = copy.copy(client)
    view.cookies = NoCookieJar()
    return view
