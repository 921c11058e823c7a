"""The tenant of a sign-in is what the provider (or the app's verifier) confirmed for the
grant, never the ``company_id`` the login URL asked for: the user can edit or drop that
on the authorize page before approving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette_support import APP_ORIGIN, Env, make_env

from whop_oauth import TenantNotConfirmed, Token, WhopOAuthError
from whop_oauth.starlette import TenantVerifier
from whop_oauth.testing import MockWhop

VICTIM = "biz_victim"
ATTACKER = "biz_attacker"
USER = "user_mock1"
#: ``None``: the mock as it comes (it names the company only in introspection, as Whop
#: documents no echo); otherwise the places the mock names the granted company.
ECHO_MODES = [None, ("token_response",), ("id_token",)]


@asynccontextmanager
async def environment(echo: tuple[str, ...] | None, **options: Any) -> AsyncIterator[Env]:
    mock = MockWhop() if echo is None else MockWhop(company_echo=echo)
    async with httpx.AsyncClient(transport=mock.transport()) as http:
        env = make_env(mock, http, **options)
        try:
            yield env
        finally:
            await env.provider.aclose()


async def sign_in_tampered(
    env: Env, browser: httpx.AsyncClient, company: str | None
) -> httpx.Response:
    """Log in asking for the victim's company, then edit (or drop) it on the authorize URL."""
    login = await browser.get("/auth/login", params={"company_id": VICTIM})
    authorize = httpx.URL(login.headers["location"])
    assert authorize.params["company_id"] == VICTIM
    params = [(k, v) for k, v in authorize.params.multi_items() if k != "company_id"]
    if company is not None:
        params.append(("company_id", company))
    answer = await env.provider.get(authorize.copy_with(params=params))
    assert answer.status_code == 302, answer.text
    return await browser.get(answer.headers["location"])


async def assert_nothing_names_the_victim(env: Env, browser: httpx.AsyncClient) -> None:
    page = (await browser.get("/")).json()
    assert page.get("tenant") != VICTIM
    assert await env.store.get(env.client.token_key(USER, VICTIM)) is None
    assert VICTIM not in [grant.company_id for grant in env.mock.grants]


@pytest.mark.parametrize("echo", ECHO_MODES, ids=["no-echo", "token-response", "id-token"])
@pytest.mark.parametrize("company", [ATTACKER, None], ids=["edited", "dropped"])
async def test_a_company_id_edited_or_dropped_on_the_authorize_url_never_becomes_the_tenant(
    echo: tuple[str, ...] | None, company: str | None
) -> None:
    async with environment(echo) as env, env.browser() as browser:
        callback = await sign_in_tampered(env, browser, company)
        await assert_nothing_names_the_victim(env, browser)

        (grant,) = env.mock.grants
        if echo is not None and company is not None:
            # The provider named the company it granted: that is the tenant.
            assert callback.status_code == 303
            assert (await browser.get("/")).json()["tenant"] == ATTACKER
            stored = await env.store.get(env.client.token_key(USER, ATTACKER))
            assert stored is not None
            assert stored.token.company_id == ATTACKER  # what refresh must send again
            assert not grant.revoked
        else:
            # Nothing confirmed the company asked for: no session, nothing stored, no live grant.
            assert callback.status_code == 403
            assert (await browser.get("/")).json() == {"signed_in": False}
            assert grant.revoked


async def test_a_grant_for_the_confirmed_company_refreshes_with_that_company() -> None:
    async with environment(("token_response",)) as env, env.browser() as browser:
        await sign_in_tampered(env, browser, ATTACKER)
        env.mock.expire_access_tokens()

        assert (await browser.get("/account")).status_code == 200
        assert [g.rotations for g in env.mock.grants] == [1]


@pytest.mark.parametrize("echo", ECHO_MODES, ids=["no-echo", "token-response", "id-token"])
async def test_an_untampered_company_sign_in_is_stored_under_the_confirmed_company(
    echo: tuple[str, ...] | None,
) -> None:
    async with environment(echo) as env, env.browser() as browser:
        callback = await env.sign_in(browser, company_id="biz_42")

        if echo is None:
            assert callback.status_code == 403  # confirmed by nothing, and no verifier
            return
        assert (await browser.get("/")).json()["tenant"] == "biz_42"
        stored = await env.store.get(env.client.token_key(USER, "biz_42"))
        assert stored is not None
        assert stored.token.company_id == "biz_42"


@pytest.mark.parametrize("echo", ECHO_MODES, ids=["no-echo", "token-response", "id-token"])
async def test_single_tenant_apps_sign_in_under_the_default_tenant(
    echo: tuple[str, ...] | None,
) -> None:
    async with environment(echo) as env, env.browser() as browser:
        assert (await env.sign_in(browser)).status_code == 303
        assert (await browser.get("/")).json()["tenant"] == "default"


def introspection_verifier(envs: list[Env], seen: list[Token]) -> TenantVerifier:
    """The app's own proof: ask the provider (here by introspection) which company it is."""

    async def verify(token: Token) -> str:
        seen.append(token)
        company = (await envs[0].client.introspect(token)).get("company_id")
        if not isinstance(company, str):
            raise TenantNotConfirmed("the provider named no company for this grant")
        return company

    return verify


@pytest.mark.parametrize(
    ("company", "tenant"), [(VICTIM, VICTIM), (ATTACKER, ATTACKER), (None, None)]
)
async def test_a_tenant_verifier_decides_the_tenant_from_the_provider(
    company: str | None, tenant: str | None
) -> None:
    seen: list[Token] = []
    envs: list[Env] = []
    async with environment(None, tenant_verifier=introspection_verifier(envs, seen)) as env:
        envs.append(env)
        async with env.browser() as browser:
            callback = await sign_in_tampered(env, browser, company)
            page = (await browser.get("/")).json()

        (grant,) = env.mock.grants
        if tenant is None:
            assert callback.status_code == 403
            assert page == {"signed_in": False}
            assert grant.revoked
        else:
            assert page["tenant"] == tenant
            assert await env.store.get(env.client.token_key(USER, tenant)) is not None
        # The verifier saw the login's wish as company_id: its job is to check it.
        assert [token.company_id for token in seen] == [VICTIM]


async def test_a_verifier_answer_that_is_not_a_tenant_is_a_configuration_error() -> None:
    errors: list[WhopOAuthError] = []

    async def on_error(request: Request, error: WhopOAuthError, status: int) -> Response:
        errors.append(error)
        return PlainTextResponse("no", status_code=status)

    async def broken(token: Token) -> str:
        return ""

    async with environment(None, tenant_verifier=broken, error_handler=on_error) as env:
        async with env.browser() as browser:
            callback = await env.sign_in(browser, company_id="biz_42")
        assert callback.status_code == 500
        assert [type(e).__name__ for e in errors] == ["ConfigurationError"]
        assert [g.revoked for g in env.mock.grants] == [True]


async def test_a_verifier_that_crashes_leaves_no_live_grant() -> None:
    async def crashes(token: Token) -> str:
        raise KeyError("the app's own bug")

    async with environment(None, tenant_verifier=crashes) as env:
        transport = httpx.ASGITransport(app=env.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=APP_ORIGIN) as b:
            login = await b.get("/auth/login")
            callback = await b.get(await env.authorize(login))
        assert callback.status_code == 500
        assert [g.revoked for g in env.mock.grants] == [True]
        assert await env.store.get(env.client.token_key(USER, "default")) is None


async def test_an_unconfirmed_company_is_a_typed_error_handed_to_the_error_handler() -> None:
    errors: list[tuple[WhopOAuthError, int]] = []

    async def on_error(request: Request, error: WhopOAuthError, status: int) -> Response:
        errors.append((error, status))
        return PlainTextResponse("company not confirmed", status_code=status)

    async with environment(None, error_handler=on_error) as env, env.browser() as browser:
        callback = await env.sign_in(browser, company_id="biz_42")

        assert callback.status_code == 403
        ((error, status),) = errors
        assert isinstance(error, TenantNotConfirmed)
        assert status == 403
        assert await env.store.get(env.client.token_key(USER, "biz_42")) is None
        assert [g.revoked for g in env.mock.grants] == [True]
