"""The example app in mock mode, in-process: sign in with consent, /me, sign out."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from examples.starlette_app.app import create_app

from whop_oauth.starlette import SessionData

ORIGIN = "http://127.0.0.1:8000"
ENVIRON = {
    "WHOP_TOKEN_STORE": "memory://",
    "WHOP_SESSION_SECRETS": "x" * 40,
}


@pytest.fixture
async def browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.chdir(tmp_path)
    app = create_app(ENVIRON)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN
    ) as client:
        yield client
    # Configured keys and a memory store: nothing may be written to disk.
    assert os.listdir(tmp_path) == []


def hidden_field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert match is not None, f"no {name} field"
    return match.group(1)


async def test_the_demo_signs_in_through_the_mock_consent_page_and_out_again(
    browser: httpx.AsyncClient,
) -> None:
    home = await browser.get("/")
    assert "Sign in with Whop" in home.text
    assert "Demo mode" in home.text

    login = await browser.get("/auth/login")
    authorize = login.headers["location"]
    assert authorize.startswith(f"{ORIGIN}/mock-whop/oauth/authorize?")
    consent = await browser.get(authorize)
    assert "Approve" in consent.text
    approved = await browser.post(
        "/mock-whop/oauth/consent",
        data={"flow": hidden_field(consent.text, "flow"), "decision": "approve"},
    )
    callback = await browser.get(approved.headers["location"])
    assert (callback.status_code, callback.headers["location"]) == (303, "/")

    card = await browser.get("/")
    assert "Mock User" in card.text
    assert "mock.user@example.com" in card.text
    me = await browser.get("/me")
    assert me.status_code == 200
    assert me.json()["email"] == "mock.user@example.com"

    out = await browser.post(
        "/auth/logout",
        data={"csrf_token": hidden_field(card.text, "csrf_token")},
        headers={"Origin": ORIGIN},
    )
    assert out.status_code == 303
    assert "Sign in with Whop" in (await browser.get("/")).text


async def test_me_sends_a_signed_out_browser_to_the_login_page(
    browser: httpx.AsyncClient,
) -> None:
    response = await browser.get("/me", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login?next=%2Fme"


async def test_missing_keys_are_generated_once_shared_by_every_worker_and_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    first = create_app({})
    second = create_app({})

    key_file = tmp_path / ".whop_demo_keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "generated demo keys" in caplog.text
    codec = first.state.whop._site.cookies.codec
    signed = codec.dumps_session(SessionData.new("user_1", "default"))
    assert second.state.whop._site.cookies.codec.loads_session(signed, max_age=60)[0] is not None
    for app in (first, second):
        await app.state.whop._site.manager.store.aclose()


async def test_the_demo_pages_profile_sign_out_notice_and_error_share_one_look(
    browser: httpx.AsyncClient,
) -> None:
    html = {"Accept": "text/html"}
    consent = await browser.get((await browser.get("/auth/login?next=/me")).headers["location"])
    denied = await browser.post(
        "/mock-whop/oauth/consent",
        data={"flow": hidden_field(consent.text, "flow"), "decision": "deny"},
    )
    error = await browser.get(denied.headers["location"])
    assert error.status_code == 400
    assert 'id="error"' in error.text
    assert "Demo mode" in error.text  # the app's banner and stylesheet, not the library's page
    assert 'href="/auth/login?next=%2Fme"' in error.text  # "Try again" keeps /me

    consent = await browser.get((await browser.get("/auth/login?next=/me")).headers["location"])
    approved = await browser.post(
        "/mock-whop/oauth/consent",
        data={"flow": hidden_field(consent.text, "flow"), "decision": "approve"},
    )
    callback = await browser.get(approved.headers["location"])
    assert callback.headers["location"] == "/me"
    me = await browser.get("/me", headers=html)
    assert 'id="userinfo"' in me.text
    assert "mock.user@example.com" in me.text
    assert me.text.count("data:image/") == 1  # the picture, once, as an <img>
    assert '<img alt="" src="data:image/' in me.text
    assert 'href="/"' in me.text

    card = await browser.get("/")
    out = await browser.post(
        "/auth/logout",
        data={"csrf_token": hidden_field(card.text, "csrf_token")},
        headers={"Origin": ORIGIN},
    )
    assert out.headers["location"] == "/?signed_out=1"
    assert "signed out" in (await browser.get(out.headers["location"])).text
    assert "signed out" not in (await browser.get("/")).text
