"""The example app served by uvicorn, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium"),
]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the example app exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # polling for readiness, not papering over a race
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def example_app(tmp_path: Path) -> Iterator[str]:
    """The example app with no credentials (mock mode) on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WHOP_")},
        "WHOP_REDIRECT_URI": f"{base}/auth/callback",
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable, "-m", "uvicorn", "examples.starlette_app.app:app",
        "--fd", str(sock.fileno()), "--log-level", "warning", "--no-access-log",
    ]
    # The socket is bound here and handed over, so no other process can take the port.
    process = subprocess.Popen(command, cwd=tmp_path, env=env, pass_fds=[sock.fileno()])
    sock.close()
    try:
        wait_until_serving(f"{base}/", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_user_signs_in_sees_their_card_and_profile_signs_out_and_retries(
    example_app: str,
) -> None:
    from playwright.async_api import async_playwright

    output = REPO / "test-output"
    output.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 700})
            page.set_default_timeout(15_000)
            await page.goto(f"{example_app}/")
            await page.click("text=Sign in with Whop")
            await page.wait_for_url(f"{example_app}/mock-whop/oauth/authorize?*")
            await page.click("button:has-text('Approve')")
            await page.wait_for_url(f"{example_app}/")

            card = page.locator("#profile")
            assert "Mock User" in await card.inner_text()
            assert "mock.user@example.com" in await card.inner_text()
            assert await page.locator("#profile img.avatar").is_visible()
            await page.screenshot(path=str(output / "starlette-signed-in.png"))

            first = await page.goto(f"{example_app}/me")
            again = await page.reload()
            assert first is not None
            assert again is not None
            assert (first.status, again.status) == (200, 200), await again.text()
            # A readable page, not raw JSON: the picture is a picture, and a way back.
            table = page.locator("#userinfo table")
            assert "user_mock1" in await table.inner_text()
            assert "mock.user@example.com" in await table.inner_text()
            assert "data:image" not in await table.inner_text()
            assert await page.locator("#userinfo td img").count() == 1
            await page.screenshot(path=str(output / "starlette-me.png"), full_page=True)
            as_json = await page.goto(f"{example_app}/me?format=json")
            assert as_json is not None
            assert (await as_json.json())["sub"] == "user_mock1"
            await page.goto(f"{example_app}/me")
            await page.click("text=Back")
            await page.wait_for_url(f"{example_app}/")

            await page.click("button:has-text('Sign out')")
            await page.wait_for_selector("text=Sign in with Whop")
            assert await page.locator("#profile").count() == 0
            assert "signed out" in await page.locator(".notice").inner_text()
            await page.screenshot(path=str(output / "starlette-signed-out.png"))

            # Denied at the consent page: the app's own error page; "Try again" keeps /me.
            await page.goto(f"{example_app}/me")
            await page.wait_for_url(f"{example_app}/mock-whop/oauth/authorize?*")
            await page.click("button:has-text('Deny')")
            await page.wait_for_selector("#error")
            assert "Sign-in cancelled" in await page.locator("#error").inner_text()
            assert await page.locator(".banner").is_visible()  # the demo banner, as elsewhere
            font = "getComputedStyle(document.body).fontFamily"
            error_font = await page.evaluate(font)
            await page.screenshot(path=str(output / "starlette-error.png"))
            await page.click("text=Try again")
            await page.wait_for_url(f"{example_app}/mock-whop/oauth/authorize?*")
            await page.click("button:has-text('Approve')")
            await page.wait_for_url(f"{example_app}/me")  # where the user was going
            assert await page.evaluate(font) == error_font
        finally:
            await browser.close()
