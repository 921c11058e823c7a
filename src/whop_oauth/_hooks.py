"""Hooks through which an app observes refreshes, failures and deletions (no token values)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._errors import ConfigurationError
from ._token import TokenKey

__all__ = [
    "DeletionReason",
    "RefreshFailure",
    "RefreshHooks",
    "RefreshInfo",
    "call_hook",
    "check_hook",
    "hook_name",
]

logger = logging.getLogger("whop_oauth.manager")

#: Why a stored grant was deleted.
DeletionReason = Literal["invalid_grant", "sign_out", "no_refresh_token", "undecryptable"]


@dataclass(frozen=True, slots=True)
class RefreshInfo:
    """What a hook learns about a successful refresh: metadata, never a token."""

    expires_at: float | None
    scopes: tuple[str, ...]
    #: The provider sent a new refresh token (rotation).
    rotated: bool
    #: Refreshed after the API rejected the access token, rather than ahead of expiry.
    forced: bool
    #: Seconds the token endpoint took.
    duration: float


@dataclass(frozen=True, slots=True)
class RefreshFailure:
    """What a hook learns about a failed refresh.

    A summary rather than the exception itself: an error's ``response.request``
    still holds the refresh token that was sent.
    """

    error_type: type[Exception]
    #: ``str(error)``: the library's messages never contain token values.
    message: str
    #: The RFC 6749 error code (``invalid_grant``, ``server_error`` ...), if one came back.
    oauth_error: str | None = None
    status_code: int | None = None
    retry_after: float | None = None

    @classmethod
    def from_error(cls, error: Exception) -> RefreshFailure:
        response = getattr(error, "response", None)
        return cls(
            error_type=type(error),
            message=str(error),
            oauth_error=getattr(error, "error", None),
            status_code=getattr(response, "status_code", None),
            retry_after=getattr(error, "retry_after", None),
        )


@dataclass(frozen=True, slots=True)
class RefreshHooks:
    """Optional callbacks for metrics and audit logs; each may be sync or async.

    They receive the ``TokenKey`` (tenant, user, issuer, client id) and metadata,
    never a token value. A hook that raises is logged and otherwise ignored.

    ```python
    hooks = RefreshHooks(
        on_refresh=lambda key, info: metrics.incr("whop.refresh", tenant=key.tenant),
        on_refresh_failed=lambda key, failure: metrics.incr("whop.refresh_failed"),
        on_grant_deleted=lambda key, reason: audit(key.user, "grant deleted", reason),
    )
    manager = TokenManager(client, store, hooks=hooks)
    ```
    """

    on_refresh: Callable[[TokenKey, RefreshInfo], object] | None = None
    on_refresh_failed: Callable[[TokenKey, RefreshFailure], object] | None = None
    on_grant_deleted: Callable[[TokenKey, DeletionReason], object] | None = None

    def __post_init__(self) -> None:
        # A hook that cannot take (key, info) would only fail at the first refresh.
        for name in ("on_refresh", "on_refresh_failed", "on_grant_deleted"):
            check_hook(f"RefreshHooks.{name}", getattr(self, name), ("key", "info"))


def hook_name(hook: Callable[..., object]) -> str:
    """``module.qualname`` of a hook, for log lines (``<lambda>`` says where it was made)."""
    module = getattr(hook, "__module__", None) or "?"
    qualname = getattr(hook, "__qualname__", None) or type(hook).__qualname__
    return f"{module}.{qualname}"


def check_hook(slot: str, hook: object, params: tuple[str, ...]) -> None:
    """Refuse, when it is set, a hook that cannot be called with ``params``.

    >>> check_hook("RefreshHooks.on_refresh", lambda key: None, ("key", "info"))
    Traceback (most recent call last):
    whop_oauth._errors.ConfigurationError: RefreshHooks.on_refresh is called with (key, info), ...
    """
    if hook is None:
        return
    if not callable(hook):
        raise ConfigurationError(f"{slot} must be a function, not {type(hook).__name__}")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return  # a builtin or C callable without a signature: trust it
    try:
        signature.bind(*params)
    except TypeError as error:
        raise ConfigurationError(
            f"{slot} is called with ({', '.join(params)}), but {hook_name(hook)} "
            f"cannot take that: {error}"
        ) from None


async def call_hook(hook: Callable[..., object] | None, *args: object) -> None:
    """Run one hook; an app's metrics bug must not break authentication.

    A hook that raises is logged at WARNING by name, with its traceback (hooks get
    keys and metadata, never a token, so the traceback holds none).
    """
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception as error:
        logger.warning(
            "the whop_oauth hook %s raised %s",
            hook_name(hook),
            type(error).__name__,
            exc_info=True,
        )


async def report_failure(hooks: RefreshHooks, key: TokenKey, error: Exception) -> None:
    if hooks.on_refresh_failed is not None:
        await call_hook(hooks.on_refresh_failed, key, RefreshFailure.from_error(error))
