"""Helpers for the security suite: the app driver (tests/support/app_driver.py) with a
confidential client, a spied store and recorded errors; the wire and store spies
(tests/support/spies.py); query and flow-cookie editing; grants minted without a browser."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from app_driver import APP_ORIGIN, APP_REDIRECT_URI, USER, App
from app_driver import build_app as build
from spies import SpyStore, Wire

from whop_oauth import Token
from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockClient, MockWhop

__all__ = [
    "APP_ORIGIN",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REDIRECT_URI",
    "SESSION_KEY",
    "USER",
    "App",
    "SpyStore",
    "Wire",
    "build_app",
    "edit_query",
    "flow_cookie",
    "mint_token",
    "new_mock",
    "query_of",
    "set_flow_cookie",
]

REDIRECT_URI = APP_REDIRECT_URI
CLIENT_ID = "app_security"
# Random per run, so a test that finds one in a log found a real leak, not a coincidence.
CLIENT_SECRET = "apik_" + secrets.token_urlsafe(24)
SESSION_KEY = secrets.token_urlsafe(40)


def new_mock(**options: object) -> MockWhop:
    """A MockWhop that knows our confidential client."""
    client = MockClient(CLIENT_ID, client_secret=CLIENT_SECRET, name="Security suite")
    return MockWhop(clients={CLIENT_ID: client}, **options)  # type: ignore[arg-type]


def build_app(
    mock: MockWhop,
    *,
    store: TokenStore | None = None,
    secret_keys: Sequence[str] = (SESSION_KEY,),
    default_pages: bool = False,
    **client_options: object,
) -> App:
    """The app with our confidential client, talking through a ``Wire``, grant writes
    spied; failed sign-ins are recorded in ``App.errors`` unless ``default_pages``, and
    ``App.sign_in`` insists on the 303 of a sign-in that worked."""
    return build(
        mock,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        store=store,
        spy=True,
        secret_keys=secret_keys,
        client_options=client_options,
        record_errors=not default_pages,
        expect_sign_in=303,
    )


def edit_query(
    url: str,
    *,
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
    replace: dict[str, str] | None = None,
) -> str:
    """``url`` with query parameters dropped, replaced or added (duplicates kept)."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
    if replace:
        pairs = [(k, replace.get(k, v)) for k, v in pairs]
    pairs += list(add)
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def flow_cookie(browser: httpx.AsyncClient) -> tuple[str, str]:
    """The one flow cookie in the browser's jar: (name, value)."""
    found = [(c.name, c.value) for c in browser.cookies.jar if c.name.startswith("whop_flow_")]
    assert len(found) == 1, found
    name, value = found[0]
    assert value is not None
    return name, value


def set_flow_cookie(browser: httpx.AsyncClient, name: str, value: str) -> None:
    """Replace a flow cookie in the jar, as a browser (or an attacker) would."""
    browser.cookies.delete(name)
    browser.cookies.set(name, value, domain="127.0.0.1", path="/auth/callback")


def mint_token(mock: MockWhop, user: str = USER, **claims: object) -> Token:
    """A real grant from the mock, without the browser round trip."""
    body = mock.issue_tokens(user, client_id=CLIENT_ID, **claims)  # type: ignore[arg-type]
    return Token(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=time.time() + body["expires_in"],
        scopes=tuple(body["scope"].split()),
    )
