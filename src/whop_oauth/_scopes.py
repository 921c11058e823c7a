"""Scopes (RFC 6749 §3.3): case-sensitive tokens, separated by spaces in a ``scope`` string.

Every place that reads a scope string splits it here: order kept, repeats dropped.

>>> split_scopes("openid  profile openid")
('openid', 'profile')
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._errors import ConfigurationError

__all__ = ["normalise_scope", "split_scopes"]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3


def split_scopes(value: str) -> tuple[str, ...]:
    """The scopes of a space-separated string, in order, each once."""
    return tuple(dict.fromkeys(value.split()))


def normalise_scope(scope: str | Sequence[str]) -> tuple[str, ...]:
    """A configured scope (``"openid profile"`` or a list), checked, as a tuple.

    >>> normalise_scope(["openid", "email", "openid"])
    ('openid', 'email')
    """
    items = split_scopes(scope) if isinstance(scope, str) else tuple(scope)
    for item in items:  # checked before de-duplicating: a list item may be unhashable
        if not isinstance(item, str) or not _SCOPE_TOKEN.fullmatch(item):
            raise ConfigurationError("a scope must be a non-empty token without spaces or quotes")
    return tuple(dict.fromkeys(items))
