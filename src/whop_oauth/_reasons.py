"""What went wrong, as one log-safe phrase: the error's type, the provider's code and
description, never a token, code, secret or cookie value.

A provider's ``error_description`` is text from outside: it is cut short, stripped
of control characters (no forged log lines) and of any secret the caller names
(a provider could echo the token it was sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._errors import AuthorizationDenied, ProviderError, WhopOAuthError

__all__ = ["clean", "describe"]

_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]|[\u2028\u2029]")
_MAX_TEXT = 200
_REDACTED = "[redacted]"


def clean(text: str | None, hide: Iterable[str | None] = ()) -> str:
    r"""Outside text made fit for a log line: secrets in ``hide`` redacted, control
    characters replaced, at most 200 characters.

    >>> clean("refused\nFAKE LINE for pw123", hide=["pw123"])
    'refused?FAKE LINE for [redacted]'
    """
    if not text:
        return ""
    for secret in hide:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _code(value: object) -> str:
    return value if isinstance(value, str) and _CODE.fullmatch(value) else "(unreadable code)"


def describe(error: BaseException, *, hide: Iterable[str | None] = ()) -> str:
    """``"ProviderError invalid_request: client_id is missing (HTTP 400)"`` and the like.

    ``hide`` lists values (tokens) that must not appear even if the provider echoed them.

    >>> describe(ProviderError("invalid_grant", "refresh token expired"))
    'ProviderError invalid_grant: refresh token expired'
    """
    hide = tuple(hide)
    name = type(error).__name__
    if isinstance(error, ProviderError | AuthorizationDenied):
        text = f"{name} {_code(error.error)}"
        detail = clean(error.error_description, hide)
        text += f": {detail}" if detail else ""
        status = error.status_code if isinstance(error, ProviderError) else None
        return f"{text} (HTTP {status})" if status is not None else text
    if isinstance(error, TimeoutError):
        return f"{name} (no answer in time)"
    if isinstance(error, WhopOAuthError):
        # Our own messages name fields and endpoints, never a secret (see _errors).
        detail = clean(str(error), hide)
        return f"{name}: {detail}" if detail else name
    return name
