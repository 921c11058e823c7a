"""Browsing ``localhost`` while the redirect URI says ``127.0.0.1``: the login moves the
browser to the redirect URI's origin and says why, so the sign-in works instead of ending
on "Sign-in link expired"."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette_support import APP_ORIGIN, Env


async def test_a_login_on_another_loopback_origin_is_moved_to_the_redirect_uris(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    async with env.browser("http://localhost:8000") as elsewhere:
        response = await elsewhere.get("/auth/login", params={"next": "/reports?x=1"})

    assert response.status_code == 303
    assert response.headers["location"] == (f"{APP_ORIGIN}/auth/login?next=%2Freports%3Fx%3D1")
    assert "set-cookie" not in response.headers  # no flow cookie on the wrong origin
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "sign-in started at http://localhost:8000 but the redirect URI (WHOP_REDIRECT_URI) "
        "is on http://127.0.0.1:8000: the sign-in cookie would be set on the wrong origin. "
        "Sending the browser to http://127.0.0.1:8000; browse that address, or register "
        "and configure a redirect URI on http://localhost:8000"
    ]


async def test_following_the_move_signs_in(env: Env) -> None:
    async with env.browser("http://localhost:8000") as elsewhere:
        moved = await elsewhere.get("/auth/login")
    async with env.browser() as browser:
        login = await browser.get(httpx.URL(moved.headers["location"]).raw_path.decode())
        callback = await browser.get(await env.authorize(login))

        assert callback.status_code == 303
        assert (await browser.get("/")).json()["signed_in"] is True


async def test_a_non_loopback_mismatch_is_logged_once_and_left_alone(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    async with env.browser("http://internal.test:8080") as proxied:
        first = await proxied.get("/auth/login")
        second = await proxied.get("/auth/login")

    assert first.status_code == second.status_code == 303
    assert first.headers["location"].startswith(env.mock.issuer)  # on to the provider
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "a login request reached this app as http://internal.test:8080 but the redirect "
        "URI is on http://127.0.0.1:8000."
    )
