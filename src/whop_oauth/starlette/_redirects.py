"""Return paths (``?next=``) that cannot become open redirects."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import quote, urlsplit

from .._paths import has_bad_chars, is_local_path

__all__ = ["origin_of", "safe_return_path"]

# Everything printable in ASCII stays as is; the rest (non-ASCII) is percent-encoded.
_SAFE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL, lower-cased.

    >>> origin_of("https://App.example/auth/callback?x=1")
    'https://app.example'
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def safe_return_path(
    value: str | None, *, default: str = "/", origins: Collection[str] = ()
) -> str:
    """``value`` if it is a path on this site, else ``default``.

    Accepted: a path starting with one ``/`` (with query and fragment), or an
    absolute URL whose origin is one of ``origins`` (reduced to its path, so
    ``@requires(..., redirect=...)``'s full-URL ``next`` works). Refused, giving
    ``default``: other origins, ``//host``, ``/\\host``, schemes such as
    ``javascript:``, control or whitespace characters, backslashes, and any of
    these hidden behind percent-encoding.

    >>> safe_return_path("/orders?page=2")
    '/orders?page=2'
    >>> safe_return_path("//evil.com")
    '/'
    >>> safe_return_path("https://app.example/x", origins={"https://app.example"})
    '/x'
    """
    if not value:
        return default
    if not value.startswith("/"):
        if not origins or has_bad_chars(value):
            return default
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. "http://[::1": not a URL we could return to
            return default
        if f"{parts.scheme}://{parts.netloc}".lower() not in {o.lower() for o in origins}:
            return default
        value = parts.path or "/"
        value += f"?{parts.query}" if parts.query else ""
        value += f"#{parts.fragment}" if parts.fragment else ""
    if not is_local_path(value):
        return default
    return quote(value, safe=_SAFE_CHARS)

