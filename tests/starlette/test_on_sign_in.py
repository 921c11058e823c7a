"""``WhopAuth(on_sign_in=...)``: told whom a background job can now act for (a key,
never a token), after the grant is stored; a broken hook never breaks a sign-in."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from starlette_support import Env

from whop_oauth import ConfigurationError, TokenKey


async def test_the_hook_gets_the_key_after_the_grant_is_stored(
    env_factory: Callable[..., Env],
) -> None:
    seen: list[tuple[TokenKey, bool]] = []
    env: Env

    async def on_sign_in(key: TokenKey) -> None:
        # The job the hook starts can use the grant at once.
        seen.append((key, await env.store.get(key) is not None))

    env = env_factory(on_sign_in=on_sign_in)
    async with env.browser() as browser:
        assert (await env.sign_in(browser)).status_code == 303

    assert seen == [(env.client.token_key("user_mock1"), True)]
    assert seen[0][0].tenant == "default"
    assert [u async for u in env.manager.users(tenant="default")] == ["user_mock1"]
    await env.provider.aclose()


def test_a_hook_with_a_wrong_signature_is_refused_by_name(
    env_factory: Callable[..., Env],
) -> None:
    def greet(user: str, tenant: str) -> None: ...

    with pytest.raises(ConfigurationError, match=r"^WhopAuth on_sign_in is called with \(key\)"):
        env_factory(on_sign_in=greet)


async def test_a_hook_that_raises_is_logged_and_the_sign_in_goes_on(
    env_factory: Callable[..., Env], caplog: pytest.LogCaptureFixture
) -> None:
    def enqueue(key: TokenKey) -> None:
        raise ConnectionError("queue down")

    env = env_factory(on_sign_in=enqueue)
    async with env.browser() as browser:
        response = await env.sign_in(browser)
        home = await browser.get("/")

    assert response.status_code == 303
    assert home.json()["signed_in"] is True
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage().endswith(".<locals>.enqueue raised ConnectionError")
    assert record.exc_info is not None
    await env.provider.aclose()
