"""``APIKeyAuth``: an ``httpx.Auth`` for company and app API keys."""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from typing import Literal, get_args

import httpx
from starlette.datastructures import Secret

from ._errors import ConfigurationError

__all__ = ["APIKeyAuth"]

Environment = Literal["live", "test"]
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_KEY = re.compile(r"[\x21-\x7e]+")  # printable, no spaces: nothing that could split a header


class APIKeyAuth(httpx.Auth):
    """Send an API key with every request.

    By default as ``Authorization: Bearer <key>`` (Whop); any other header name
    carries the raw key (``X-API-Key`` style). With ``environment``, a key whose
    prefix names the other environment is refused at construction, so a test key
    cannot slip into a live deployment (or a live key into tests). A key with
    neither prefix is accepted: providers like Whop do not mark environments.

    >>> auth = APIKeyAuth("wk_live_abc", header="X-API-Key", environment="live")
    >>> auth
    APIKeyAuth(header='X-API-Key', environment='live')
    >>> httpx.AsyncClient(auth=auth)  # doctest: +SKIP
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
    ) -> None:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigurationError("the API key must be a non-empty string without spaces")
        if not _HEADER_NAME.fullmatch(header):
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

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.header.lower() == "authorization":
            request.headers["Authorization"] = f"Bearer {self._key}"
        else:
            request.headers[self.header] = str(self._key)
        yield request

    def __repr__(self) -> str:
        return f"APIKeyAuth(header={self.header!r}, environment={self.environment!r})"
