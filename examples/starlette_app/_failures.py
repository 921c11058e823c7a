"""A failed sign-in, answered in the example app's own look (``WhopAuth(error_handler=)``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from whop_oauth import AuthorizationDenied, ProviderError, StateMismatchError, WhopOAuthError
from whop_oauth.starlette import ErrorHandler, sign_in_url

from ._pages import CSP, error_page


def _describe(error: WhopOAuthError, status: int) -> tuple[str, str]:
    if isinstance(error, AuthorizationDenied) and error.error == "access_denied":
        return "Sign-in cancelled", "You did not allow access, so you are not signed in."
    if isinstance(error, StateMismatchError):
        return (
            "Sign-in link expired",
            "This sign-in was already used, has expired, or was started in another browser.",
        )
    if status == 400:
        return "Sign-in didn\u2019t finish", "The provider\u2019s answer could not be used."
    if status == 403:
        return "Company not confirmed", "The provider did not confirm the company you chose."
    if status in (503, 504):
        return "The provider is unavailable", "It did not answer in time. Try again in a moment."
    return "Sign-in failed", "The provider answered something this app could not use."


def _detail(error: WhopOAuthError) -> str | None:
    # The provider's code and description (they come from a URL anyone can write:
    # the page escapes them, and they are only ever shown).
    if isinstance(error, AuthorizationDenied | ProviderError):
        return (error.error + (f": {error.error_description}" if error.error_description else ""))[
            :300
        ]
    return None


def failure_handler(*, demo: bool) -> ErrorHandler:
    """The app's ``error_handler``: its page, with "Try again" back to where the user was going."""

    def handle(request: Request, error: WhopOAuthError, status: int) -> Response:
        title, message = _describe(error, status)
        page = error_page(
            title=title,
            message=message,
            detail=_detail(error),
            try_again_url=sign_in_url(request),
            demo=demo,
        )
        return HTMLResponse(page, status_code=status, headers={"Content-Security-Policy": CSP})

    return handle
