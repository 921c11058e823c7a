"""A failed sign-in's "Try again" returns the user where they were going; sign-out can land
on a page of the app's choosing (e.g. one that says "You're signed out")."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette_support import Env

from whop_oauth import WhopOAuthError
from whop_oauth.starlette import sign_in_url


def try_again_link(page: str) -> str:
    match = re.search(r'<a href="([^"]+)">Try again</a>', page)
    assert match is not None, page
    return unescape(match.group(1))


async def test_try_again_after_a_denied_sign_in_keeps_the_return_path(
    env: Env, browser: httpx.AsyncClient
) -> None:
    env.mock.deny_next("access_denied")
    login = await browser.get("/auth/login", params={"next": "/reports?y=1"})
    callback = await env.authorize(login)

    page = await browser.get(callback)

    assert page.status_code == 400
    assert try_again_link(page.text) == "/auth/login?next=%2Freports%3Fy%3D1"
    # ...and following it signs in and lands there.
    landed = await env.sign_in(browser, next=httpx.URL(try_again_link(page.text)).params["next"])
    assert landed.headers["location"] == "/reports?y=1"


async def test_try_again_after_a_replayed_callback_goes_home_never_to_the_callback(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.authorize(await browser.get("/auth/login", params={"next": "/reports"}))
    await browser.get(callback)
    browser.cookies.clear()

    page = await browser.get(callback)  # no flow cookie any more: where it went is unknown

    assert page.status_code == 400
    assert try_again_link(page.text) == "/auth/login?next=%2F"


async def test_an_error_handler_gets_the_return_path_from_sign_in_url(
    env_factory: Callable[..., Env],
) -> None:
    seen: list[str] = []

    def handler(request: Request, error: WhopOAuthError, status: int) -> Response:
        seen.append(sign_in_url(request))
        return PlainTextResponse("failed", status_code=status)

    env = env_factory(error_handler=handler)
    env.mock.deny_next("access_denied")
    async with env.browser() as browser:
        callback = await env.authorize(await browser.get("/auth/login", params={"next": "/r/2"}))
        await browser.get(callback)

    assert seen == ["/auth/login?next=%2Fr%2F2"]


async def test_sign_out_lands_on_after_logout_path(env_factory: Callable[..., Env]) -> None:
    env = env_factory(after_logout_path="/?signed_out=1")
    async with env.browser() as browser:
        await env.sign_in(browser)
        token = session_id(env, browser)  # what csrf_token(request) gives the form
        out = await browser.post("/auth/logout", data={"csrf_token": token})
        assert (out.status_code, out.headers["location"]) == (303, "/?signed_out=1")
        assert (await browser.get("/")).json() == {"signed_in": False}


def session_id(env: Env, browser: httpx.AsyncClient) -> str:
    codec = env.whop._site.cookies.codec
    session = codec.loads_session(browser.cookies["whop_session"], max_age=60)[0]
    assert session is not None
    return session.session_id
