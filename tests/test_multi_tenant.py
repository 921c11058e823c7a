"""Several tenants and several OAuth clients share one store without seeing each other's
grants, and a background job acts for any (tenant, user) outside a request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from app_driver import make_client, sign_in

from whop_oauth import (
    NoGrantError,
    TokenManager,
    generate_encryption_key,
    open_store,
)
from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockClient, MockWhop

USER = "user_mock1"


@pytest.fixture
def mock() -> MockWhop:
    mock = MockWhop()
    mock.add_client(MockClient("app_other"))
    return mock


@pytest.fixture
async def http(mock: MockWhop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=mock.transport()) as client:
        yield client


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TokenStore]:
    store = open_store(f"sqlite:///{tmp_path}/t.db", encryption_keys=[generate_encryption_key()])
    yield store
    await store.aclose()


async def test_one_user_in_two_tenants_has_two_separate_grants(
    mock: MockWhop, http: httpx.AsyncClient, store: TokenStore
) -> None:
    client = make_client(mock.issuer, http, client_id="app_mock")
    manager = TokenManager(client, store)
    first = await sign_in(client, http, company_id="biz_1")
    second = await sign_in(client, http, company_id="biz_2")
    await manager.save(first, user=USER, tenant="biz_1")
    await manager.save(second, user=USER, tenant="biz_2")

    await manager.sign_out(user=USER, tenant="biz_1")

    with pytest.raises(NoGrantError):
        await manager.get_token(user=USER, tenant="biz_1")
    kept = await manager.get_token(user=USER, tenant="biz_2")
    assert kept.access_token == second.access_token
    assert kept.company_id == "biz_2"


async def test_two_oauth_clients_on_one_store_never_read_each_others_tokens(
    mock: MockWhop, http: httpx.AsyncClient, store: TokenStore
) -> None:
    client = make_client(mock.issuer, http, client_id="app_mock")
    ours = TokenManager(client, store)
    theirs = TokenManager(make_client(mock.issuer, http, client_id="app_other"), store)
    await ours.save(await sign_in(client, http, company_id="biz_1"), user=USER, tenant="biz_1")

    with pytest.raises(NoGrantError):
        await theirs.get_token(user=USER, tenant="biz_1")
    assert ours.key(user=USER, tenant="biz_1") != theirs.key(user=USER, tenant="biz_1")


async def test_a_background_job_calls_the_api_for_any_user_and_refreshes_when_needed(
    mock: MockWhop, http: httpx.AsyncClient, store: TokenStore
) -> None:
    client = make_client(mock.issuer, http, client_id="app_mock")
    manager = TokenManager(client, store)
    await manager.save(await sign_in(client, http, company_id="biz_1"), user=USER, tenant="biz_1")
    mock.expire_access_tokens()  # the provider now refuses the stored access token

    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as api:
        response = await api.get(
            "/api/v1/accounts/me", auth=manager.auth(user=USER, tenant="biz_1")
        )

    assert response.status_code == 200
    assert response.json()["id"] == USER
    assert mock.stats.token_refresh == 1
