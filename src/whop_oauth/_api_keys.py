"""``APIKeyAuth``: an ``httpx.Auth`` for company and app API keys, bound to its origins.

httpx runs an auth flow once per request, not once per redirect hop: it copies the
headers of one hop into the next and strips only ``Authorization`` when the origin
changes. So a key in ``Authorization`` is safe from redirects by httpx itself, while a
key in any other header would follow a redirect anywhere. Such a key is therefore
attached by a request event hook (``auth.event_hooks``), which httpx does call for
every hop: it sets the key on hops to an allowed origin and removes it from the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from typing import Any, Literal, get_args

import httpx
from starlette.datastructures import Secret

from ._errors import ConfigurationError
from ._origins import Origin, parse_origin
from ._urls import check_url

__all__ = ["DEFAULT_API_ORIGINS", "APIKeyAuth"]

Environment = Literal["live", "test"]
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_KEY = re.compile(r"[\x21-\x7e]+")  # printable, no spaces: nothing that could split a header
#: Where an ``APIKeyAuth`` sends its key unless told otherwise: Whop's API.
DEFAULT_API_ORIGINS = ("https://api.whop.com",)
# Request extensions travel with every redirect hop (httpx copies them), headers too.
_AUTH = "whop_oauth.api_key_auth"
_GUARDED = "whop_oauth.api_key_guarded"


class APIKeyAuth(httpx.Auth):
    """Send an API key with requests to its allowed origins, and nowhere else.

    By default as ``Authorization: Bearer <key>`` (Whop); any other header name
    carries the raw key (``X-API-Key`` style). The key goes only to
    ``allowed_origins`` (default ``https://api.whop.com``), compared as
    (scheme, host, port): a request to any other origin raises
    ``ConfigurationError`` before it is sent, and http origins are refused unless
    they are loopback or ``allow_insecure_http`` is set.

    Redirects: httpx drops ``Authorization`` when a redirect leaves the origin,
    but re-sends every other header. A key in another header is therefore set by
    ``auth.event_hooks``, which httpx calls for every hop; without them the request
    goes out without the key and ``ConfigurationError`` says what is missing.

    With ``environment``, a key whose prefix names the other environment is
    refused at construction, so a test key cannot slip into a live deployment (or
    a live key into tests). A key with neither prefix is accepted: providers like
    Whop do not mark environments.

    >>> auth = APIKeyAuth("wk_live_abc", header="X-API-Key", environment="live")
    >>> auth
    APIKeyAuth(header='X-API-Key', environment='live')
    >>> httpx.AsyncClient(auth=auth, event_hooks=auth.event_hooks)  # doctest: +SKIP
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        key: str,
        *,
        header: str = "Authorization",
        environment: Environment | None = None,
        live_prefixes: Sequence[str] = ("wk_live_",),
        test_prefixes: Sequence[str] = ("wk_test_",),
        allowed_origins: Sequence[str] = DEFAULT_API_ORIGINS,
        allow_insecure_http: bool = False,
    ) -> None:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigurationError("the API key must be a non-empty string without spaces")
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise ConfigurationError("header must be a valid HTTP header name")
        if environment is not None and environment not in get_args(Environment):
            raise ConfigurationError("environment must be 'live', 'test' or None")
        if environment == "live" and key.startswith(tuple(test_prefixes)):
            raise ConfigurationError("a test API key was given to a live configuration")
        if environment == "test" and key.startswith(tuple(live_prefixes)):
            raise ConfigurationError("a live API key was given to a test configuration")
        self._key = Secret(key)
        self.header = header
        self.environment = environment
        self._origins = _allowed(allowed_origins, allow_insecure_http)
        self._bearer = header.lower() == "authorization"

    @property
    def event_hooks(self) -> dict[str, list[Callable[[httpx.Request], Any]]]:
        """Request hooks that bind the key to its origins on every redirect hop.

        Needed with a header other than ``Authorization``; harmless otherwise. They
        work with ``httpx.Client`` and ``httpx.AsyncClient`` alike.
        """
        return {"request": [_guard]}

    def sends_key_to(self, url: httpx.URL | str) -> bool:
        """Whether a request to ``url`` may carry the key."""
        try:
            return parse_origin(url) in self._origins
        except ConfigurationError:  # relative, or not http(s)
            return False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.sends_key_to(request.url):
            # The netloc, never the whole URL: its query may hold other credentials.
            where = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
            raise ConfigurationError(
                f"APIKeyAuth: {where} is not an allowed origin for this API key "
                "(see allowed_origins); the request was not sent"
            )
        request.extensions[_AUTH] = self
        if self._bearer:
            self._attach(request)  # httpx itself strips it on every cross-origin hop
            yield request
            return
        yield request  # the request hook attaches the key, hop by hop
        if not request.extensions.get(_GUARDED):
            raise ConfigurationError(
                f"APIKeyAuth with header {self.header!r} needs its redirect guard: make the "
                "client with event_hooks=auth.event_hooks (the request went out without the key)"
            )

    def _attach(self, request: httpx.Request) -> None:
        if self._bearer:
            request.headers["Authorization"] = f"Bearer {self._key}"
        else:
            request.headers[self.header] = str(self._key)

    def _apply_to_hop(self, request: httpx.Request) -> None:
        request.extensions[_GUARDED] = True
        if self.sends_key_to(request.url):
            self._attach(request)
        else:
            request.headers.pop(self.header, None)

    def __repr__(self) -> str:
        return f"APIKeyAuth(header={self.header!r}, environment={self.environment!r})"


def _allowed(urls: Sequence[str], allow_insecure_http: bool) -> frozenset[Origin]:
    if isinstance(urls, str) or not urls:
        raise ConfigurationError("allowed_origins must be a non-empty list of URLs")
    for url in urls:
        if not isinstance(url, str):
            raise ConfigurationError("allowed_origins must be a list of URL strings")
        check_url(url, "an allowed origin", allow_insecure_http=allow_insecure_http)
    return frozenset(parse_origin(url) for url in urls)


class _Done:
    """An awaitable that is already done: the hook's return value.

    httpx.AsyncClient awaits what a request hook returns; httpx.Client ignores it.
    Returning this (instead of being a coroutine) lets one hook serve both.
    """

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_DONE = _Done()


def _guard(request: httpx.Request) -> _Done:
    auth = request.extensions.get(_AUTH)
    if isinstance(auth, APIKeyAuth):
        auth._apply_to_hop(request)
    return _DONE
