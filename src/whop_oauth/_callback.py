"""Parsing the redirect back to the callback: the authorization response.

Checks run in this order, and the first failure wins:

1. size and shape: too many or too long parameters, a duplicated OAuth
   parameter, or a front-channel ``access_token`` / ``id_token`` (a code flow
   never carries them) → ``InvalidCallbackError``;
2. ``state`` — always, error responses included: RFC 6749 §4.1.2.1 requires
   the state there too, and checking it first means a forged link cannot put an
   attacker-written ``error_description`` in front of the user
   → ``StateMismatchError``;
3. ``iss`` (RFC 9207), compared exactly with the flow's issuer; required when the
   provider advertises it → ``IssuerMismatchError``;
4. ``error=...`` → ``AuthorizationDenied``;
5. ``code`` → returned, or ``InvalidCallbackError`` when missing.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from ._authorize import AuthorizationRequest
from ._errors import (
    AuthorizationDenied,
    InvalidCallbackError,
    IssuerMismatchError,
    StateMismatchError,
)

__all__ = ["CallbackParams", "parse_callback"]

CallbackParams = str | Mapping[str, str] | Iterable[tuple[str, str]]

# Parameters of an authorization response; these may appear at most once.
_KNOWN = frozenset(
    {
        "code",
        "state",
        "iss",
        "error",
        "error_description",
        "error_uri",
        "access_token",
        "id_token",
        "token_type",
        "expires_in",
        "scope",
        "session_state",
    }
)
_FORBIDDEN = ("access_token", "id_token")
_MAX_PARAMS = 64
_MAX_TOTAL = 16_384  # characters, names and values together
_MAX_DESCRIPTION = 500


def _pairs(params: CallbackParams) -> list[tuple[str, str]]:
    if isinstance(params, str):
        return parse_qsl(params.removeprefix("?"), keep_blank_values=True)
    multi_items = getattr(params, "multi_items", None)
    if callable(multi_items):  # starlette QueryParams / httpx.QueryParams keep duplicates
        items: Iterable[Any] = multi_items()
    elif isinstance(params, Mapping):
        items = params.items()
    else:
        items = params
    pairs = list(items)
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise InvalidCallbackError("callback parameters must be pairs of strings")
    return pairs


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    if len(pairs) > _MAX_PARAMS or sum(len(k) + len(v) for k, v in pairs) > _MAX_TOTAL:
        raise InvalidCallbackError("the callback query is too large")
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in _KNOWN:
            continue  # unknown parameters are ignored (RFC 6749 §3.1)
        if name in values:
            raise InvalidCallbackError(f"the callback repeats the {name!r} parameter")
        values[name] = value
    for name in _FORBIDDEN:
        if name in values:
            raise InvalidCallbackError(f"a code flow callback must not carry {name!r}")
    return values


def _check_state(values: Mapping[str, str], flow: AuthorizationRequest) -> None:
    state = values.get("state")
    if not state:
        raise StateMismatchError("the callback has no state")
    if not hmac.compare_digest(state.encode(), flow.state.encode()):
        raise StateMismatchError("the callback state does not match this browser's flow")


def _check_issuer(values: Mapping[str, str], flow: AuthorizationRequest) -> None:
    iss = values.get("iss")
    if iss is None:
        if flow.authorization_response_iss_required:
            raise IssuerMismatchError("the callback has no iss, which this provider promises")
        return
    if iss != flow.issuer:
        raise IssuerMismatchError("the callback iss names another issuer than this flow's")


def parse_callback(params: CallbackParams, flow: AuthorizationRequest) -> str:
    """Return the authorization code from the callback query, or raise a typed error.

    ``params`` is the raw query string, a mapping, or (best, as duplicates stay
    visible) a multi-dict such as Starlette's ``request.query_params``.

    >>> code = parse_callback(request.query_params, flow)  # doctest: +SKIP
    """
    values = _single_values(_pairs(params))
    _check_state(values, flow)
    _check_issuer(values, flow)
    error = values.get("error")
    if error is not None:
        description = values.get("error_description")
        raise AuthorizationDenied(
            error[:100] or "unknown_error",
            description[:_MAX_DESCRIPTION] if description else None,
            values.get("error_uri") or None,
        )
    code = values.get("code")
    if not code:
        raise InvalidCallbackError("the callback has no code")
    return code
