"""Finding the session cookie in a request's ``Cookie`` headers, as Starlette reads it.

``request.cookies`` parses every ``Cookie`` header into a dict of every cookie on
every request. The middleware wants one cookie, the session: ``SessionCookieReader``
parses only the headers that mention it, with Starlette's own ``cookie_parser``.
(``CookiePolicy.read_session`` remembers what a header it has seen stood for.)
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import cookie_parser

__all__ = ["SessionCookieReader"]

#: How ASGI header bytes decode to text, as Starlette decodes them.
HEADER_ENCODING = "latin-1"


class SessionCookieReader:
    """The value of one cookie in an ASGI request's ``headers``, or ``None``.

    What Starlette's ``request.cookies`` would hold: every ``Cookie`` header parsed
    with its ``cookie_parser``, the last value wins. A header that does not contain
    the name is not parsed at all.

    >>> read = SessionCookieReader("whop_session")
    >>> read([(b"cookie", b"theme=dark; whop_session=abc ; b=2")])
    'abc'
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._needle = name.encode(HEADER_ENCODING)

    def __call__(self, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        found = None
        for header, value in headers:
            if header == b"cookie":
                known = self._parse(value)
                if known is not None:
                    found = known  # the last header holding the cookie wins
        return found

    def _parse(self, value: bytes) -> str | None:
        if self._needle not in value:
            return None
        return cookie_parser(value.decode(HEADER_ENCODING)).get(self.name)
