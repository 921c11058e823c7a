"""Finding one cookie in a request's ``Cookie`` headers, as Starlette would read it.

``request.cookies`` parses every ``Cookie`` header into a dict of every cookie on
every request. The middleware wants one cookie, the session, from a header that a
browser sends unchanged request after request: ``SessionCookieReader`` parses each
distinct header once and remembers what it held.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import cookie_parser

__all__ = ["MEMO_HEADER_BYTES", "MEMO_SIZE", "SessionCookieReader", "request_cookie"]

#: How many distinct ``Cookie`` headers a reader remembers, and the longest it keeps:
#: 4,096 headers of at most 1 KiB, about 5 MiB at worst (a browser's is usually a
#: few hundred bytes). Longer headers are parsed every time.
MEMO_SIZE = 4096
MEMO_HEADER_BYTES = 1024

def request_cookie(headers: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of cookie ``name`` in an ASGI request's ``headers``, or ``None``.

    What Starlette's ``request.cookies`` would hold (every ``Cookie`` header parsed
    with its ``cookie_parser``, the last value wins), without building a connection,
    its headers and a dict of every cookie: a header that does not contain ``name``
    is not parsed at all.

    >>> request_cookie([(b"cookie", b"a=1; whop_session=abc ; b=2")], "whop_session")
    'abc'
    """
    found = None
    for header, value in headers:
        if header == b"cookie":
            found = _in_header(value, name, found)
    return found


def _in_header(value: bytes, name: str, default: str | None) -> str | None:
    """Cookie ``name``'s value in one ``Cookie`` header, else ``default``."""
    if name.encode("latin-1") not in value:
        return default
    return cookie_parser(value.decode("latin-1")).get(name, default)


class SessionCookieReader:
    """``request_cookie(headers, name)``, remembering the answer for each header seen.

    The answer for one header never changes (it is the header's own text, parsed),
    so remembering it is safe whatever the header holds; a forged or expired value is
    remembered as found, and refused by the signature check after, as before. Bounded:
    the oldest of ``MEMO_SIZE`` headers is dropped first.

    >>> read = SessionCookieReader("whop_session")
    >>> read([(b"cookie", b"theme=dark; whop_session=abc")])
    'abc'
    """

    def __init__(self, name: str) -> None:
        self.name = name
        # Header → (the cookie's value in it, or None).
        self._memo: dict[bytes, tuple[str | None]] = {}

    def __call__(self, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        found = None
        for header, value in headers:
            if header == b"cookie":
                (known,) = self._memo.get(value) or self._parse(value)
                if known is not None:
                    found = known  # the last header holding the cookie wins
        return found

    def _parse(self, value: bytes) -> tuple[str | None]:
        answer = (_in_header(value, self.name, None),)
        if len(value) <= MEMO_HEADER_BYTES:
            if len(self._memo) >= MEMO_SIZE:
                del self._memo[next(iter(self._memo))]  # the oldest
            self._memo[value] = answer
        return answer
