"""Finding the session cookie in a request's ``Cookie`` headers, as Starlette reads it.

``request.cookies`` parses every ``Cookie`` header into a dict of every cookie on
every request. The middleware wants one cookie, the session, from a header that a
browser sends unchanged request after request: ``SessionCookieReader`` parses each
distinct header once, with Starlette's own ``cookie_parser``, and remembers what it
held.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import cookie_parser

__all__ = ["MEMO_HEADER_BYTES", "MEMO_SIZE", "SessionCookieReader"]

#: How many distinct ``Cookie`` headers a reader remembers, and the longest it keeps:
#: 4,096 headers of at most 1 KiB, about 5 MiB at worst (a browser's is usually a
#: few hundred bytes). Longer headers are parsed every time.
MEMO_SIZE = 4096
MEMO_HEADER_BYTES = 1024


class SessionCookieReader:
    """The value of one cookie in an ASGI request's ``headers``, or ``None``.

    What Starlette's ``request.cookies`` would hold: every ``Cookie`` header parsed
    with its ``cookie_parser``, the last value wins. A header that does not contain
    the name is not parsed at all, and each header's answer is remembered: it is the
    header's own text, parsed, so it never changes. A forged or expired value is
    remembered as found and refused by the signature check after, on every request.
    Bounded: the least recently used of ``MEMO_SIZE`` headers is dropped first.

    >>> read = SessionCookieReader("whop_session")
    >>> read([(b"cookie", b"theme=dark; whop_session=abc ; b=2")])
    'abc'
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._needle = name.encode("latin-1")
        self._remembered = lru_cache(maxsize=MEMO_SIZE)(self._parse)

    def __call__(self, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        found = None
        for header, value in headers:
            if header == b"cookie":
                parse = self._remembered if len(value) <= MEMO_HEADER_BYTES else self._parse
                known = parse(value)
                if known is not None:
                    found = known  # the last header holding the cookie wins
        return found

    def _parse(self, value: bytes) -> str | None:
        if self._needle not in value:
            return None
        return cookie_parser(value.decode("latin-1")).get(self.name)
