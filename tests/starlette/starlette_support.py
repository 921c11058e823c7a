"""Helpers for the Starlette tests: the app driver (tests/support/app_driver.py) with
retries off, and the browser's session cookie."""

from __future__ import annotations

from typing import Any

import httpx
from app_driver import APP_ORIGIN, KEY_A, KEY_B, App, build_app

from whop_oauth.testing import MockWhop

__all__ = [
    "APP_ORIGIN",
    "KEY_A",
    "KEY_B",
    "Env",
    "make_env",
    "replace_session_cookie",
    "session_cookie_value",
]

Env = App


def make_env(
    mock: MockWhop,
    http: httpx.AsyncClient,
    *,
    client_options: dict[str, Any] | None = None,
    **options: Any,
) -> App:
    """The app on ``http``; retries and their backoff belong to the client's tests, so
    failures are not retried here."""
    return build_app(
        mock, http, client_options={"max_retries": 0, **(client_options or {})}, **options
    )


def session_cookie_value(browser: httpx.AsyncClient, name: str = "whop_session") -> str:
    """The browser's session cookie value (fails the test if there is none)."""
    value = browser.cookies.get(name)
    assert value is not None, "no session cookie"
    return value


def replace_session_cookie(
    browser: httpx.AsyncClient, value: str, name: str = "whop_session"
) -> None:
    """Put ``value`` in the browser's jar in place of its session cookie, as a browser would."""
    host = browser.base_url.host
    browser.cookies.delete(name)
    browser.cookies.set(name, value, domain=host, path="/")
