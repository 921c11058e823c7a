"""Is a return path local? One rule for the client and the web integration alike."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

__all__ = ["has_bad_chars", "is_local_path"]

# Enough rounds to see through double and triple encoding; more is refused outright.
_DECODE_ROUNDS = 3
# Longer than any real page address, and small enough to ride in a cookie.
_MAX_LENGTH = 2048


def has_bad_chars(text: str) -> bool:
    """Backslashes, whitespace, control or format characters.

    Browsers read "\\" as "/" in http(s) URLs ("/\\evil.com" is "//evil.com") and drop
    tabs and newlines, so any of them could turn a path into another host.
    """
    if "\\" in text:
        return True
    return any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _looks_dangerous(path: str) -> bool:
    return not path.startswith("/") or path.startswith("//") or has_bad_chars(path)


def is_local_path(path: str) -> bool:
    """True for a path on this site (one leading ``/``, at most 2,048 characters), also
    after percent-decoding.

    >>> is_local_path("/orders?page=2"), is_local_path("//evil.com"), is_local_path("/%2F%2Fx")
    (True, False, False)
    """
    if len(path) > _MAX_LENGTH:
        return False
    candidate = path
    for _ in range(_DECODE_ROUNDS):
        if _looks_dangerous(candidate):
            return False
        decoded = unquote(candidate)
        if decoded == candidate:
            return True
        candidate = decoded
    return False  # still changing after several decodes: nobody needs that
