"""What a failed sign-in answers: the status code, and the default error page."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import httpx
from starlette.responses import HTMLResponse

from .._errors import (
    AuthorizationDenied,
    AuthorizationResponseError,
    ConfigurationError,
    InvalidGrantError,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
    StateMismatchError,
    TenantNotConfirmed,
    TokenStoreError,
    TransportError,
    WhopOAuthError,
)
from .._metadata import WHOP_HOSTS

__all__ = ["NO_CACHE_HEADERS", "error_page", "provider_display_name", "status_for"]

#: On every auth response: the callback URL holds a code, so it must not leak via
#: Referer, and nothing about a sign-in may be cached.
NO_CACHE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"


def provider_display_name(issuer: str) -> str:
    """How pages name the provider by default: "Whop" for Whop's issuers, else its host.

    >>> provider_display_name("https://idp.example/o")
    'idp.example'
    """
    host = urlsplit(issuer).hostname or issuer
    return "Whop" if host in WHOP_HOSTS and issuer.startswith("https://") else host


def status_for(error: WhopOAuthError) -> int:
    """The HTTP status that describes ``error`` to the browser.

    400: the callback was refused (denied, bad or replayed state, code rejected);
    403: the company the sign-in asked for was not confirmed; 502: the provider
    answered something unusable; 503: it is unavailable, rate limited, or our
    token store is; 504: it did not answer in time.

    >>> status_for(StateMismatchError("replayed"))
    400
    """
    if isinstance(error, AuthorizationResponseError | InvalidGrantError):
        return 400
    if isinstance(error, TenantNotConfirmed):
        return 403
    if isinstance(error, TransportError):
        timed_out = isinstance(error.__cause__, httpx.TimeoutException)
        return 504 if timed_out else 503
    if isinstance(error, RateLimitedError | TokenStoreError):
        return 503
    if isinstance(error, ServerUnavailableError):
        response = error.response
        return 503 if response is not None and response.status_code == 503 else 502
    if isinstance(error, ConfigurationError):
        return 500
    return 502


def _describe(error: WhopOAuthError, provider: str) -> tuple[str, str]:
    if isinstance(error, AuthorizationDenied):
        if error.error == "access_denied":
            return "Sign-in cancelled", "You did not allow access, so you are not signed in."
        return "Sign-in refused", f"{provider} did not complete the sign-in."
    if isinstance(error, StateMismatchError):
        return (
            "Sign-in link expired",
            "This sign-in was already used, has expired, or was started in another "
            "browser. Please start again.",
        )
    if isinstance(error, AuthorizationResponseError):
        return "Sign-in failed", f"The answer from {provider} was not valid. Please start again."
    if isinstance(error, InvalidGrantError):
        return "Sign-in expired", "The sign-in code was refused (it may have expired)."
    if isinstance(error, TenantNotConfirmed):
        return (
            "Company not confirmed",
            f"{provider} did not confirm access to the company this sign-in asked for.",
        )
    if isinstance(error, TransportError):
        return (
            f"{provider} did not answer",
            f"We could not reach {provider} in time. Please try again.",
        )
    if isinstance(error, TokenStoreError):
        return "Sign-in failed", "We could not save your sign-in. Please try again."
    if isinstance(error, ServerUnavailableError | RateLimitedError):
        return (
            f"{provider} is unavailable",
            f"{provider} is not available right now. Please try again.",
        )
    return (
        "Sign-in failed",
        f"{provider} answered something we could not use. Please try again.",
    )


def _provider_detail(error: WhopOAuthError) -> str | None:
    # The provider's error code and description come from the redirect's query
    # string: anyone can write them, so they are escaped (and only ever shown).
    if isinstance(error, AuthorizationDenied | ProviderError):
        detail = error.error
        if error.error_description:
            detail += f": {error.error_description}"
        return detail[:300]
    return None


def error_page(
    error: WhopOAuthError,
    status_code: int,
    *,
    login_url: str,
    home_url: str,
    provider: str = "Whop",
) -> HTMLResponse:
    """A small self-contained HTML page for a failed sign-in (no external resources).

    ``provider`` is the display name its sentences use (``WhopAuth(provider_name=...)``).
    """
    title, message = _describe(error, provider)
    detail = _provider_detail(error)
    detail_html = (
        f'<p class="detail">{html.escape(provider)} said: <code>{html.escape(detail)}</code></p>'
        if detail
        else ""
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f6f6f8;color:#1d1d1f;margin:0;
display:grid;place-items:center;min-height:100vh}}
main{{background:#fff;border-radius:12px;padding:2rem 2.5rem;max-width:28rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}}
h1{{font-size:1.3rem;margin-top:0}} .detail{{color:#6b6b75;font-size:.9rem}}
a{{color:#fa4616}}
</style></head>
<body><main><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{detail_html}
<p><a href="{html.escape(login_url)}">Try again</a> · <a href="{html.escape(home_url)}">Home</a></p>
</main></body></html>"""
    headers = {**NO_CACHE_HEADERS, "Content-Security-Policy": _CSP}
    return HTMLResponse(body, status_code=status_code, headers=headers)
