"""``manager.users(tenant=...)``: the users a background job can act for, page by page,
on every backend, without reading a token; ``grant_keys`` pages with ``after``/``limit``."""

from __future__ import annotations

import time

import pytest
from store_fixtures import BACKENDS, StoreFactory

from whop_oauth import ConfigurationError, OAuthClient, Token, TokenKey, TokenManager
from whop_oauth.stores import TokenStore

pytestmark = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)

ISSUER = "https://api.whop.com"


def key(user: str, tenant: str = "biz_1", client_id: str = "app_1") -> TokenKey:
    return TokenKey(tenant, user, ISSUER, client_id)


def token() -> Token:
    return Token(access_token="at", refresh_token="rt", expires_at=time.time() + 3600)


def manager_for(store: TokenStore) -> TokenManager:
    client = OAuthClient(client_id="app_1", redirect_uri="https://app.example/cb")
    return TokenManager(client, store)


async def test_grant_keys_pages_after_a_key_with_a_limit(store: TokenStore) -> None:
    keys = [key(f"user_{n:02}") for n in range(7)] + [key("user_03", client_id="app_2")]
    for k in keys:
        await store.put(k, token())
    ordered = sorted(keys, key=lambda k: (k.user, k.issuer, k.client_id))

    pages, after = [], None
    while True:
        page = await store.grant_keys("biz_1", after=after, limit=3)  # type: ignore[attr-defined]
        pages.append(page)
        if len(page) < 3:
            break
        after = page[-1]

    assert [len(page) for page in pages] == [3, 3, 2]
    assert [k for page in pages for k in page] == ordered
    assert await store.grant_keys("biz_1") == ordered  # type: ignore[attr-defined]


async def test_users_lists_this_clients_users_of_the_tenant_across_pages(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    for k in [key(f"user_{n:02}") for n in range(5)]:
        await store.put(k, token())
    await store.put(key("user_99", tenant="biz_2"), token())  # another tenant
    await store.put(key("user_50", client_id="app_other"), token())  # another client
    reader = store if store_url == "memory://" else await open_stores(store_url)

    # A background job's view: another handle, a manager that never read a token.
    users = [user async for user in manager_for(reader).users(tenant="biz_1", page_size=2)]

    assert users == [f"user_{n:02}" for n in range(5)]
    assert [u async for u in manager_for(reader).users(tenant="biz_3")] == []


async def test_users_reads_no_token(store: TokenStore) -> None:
    await store.put(key("user_1"), token())

    class KeysOnly:
        """The store with every token-reading method removed."""

        grant_keys = store.grant_keys  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"users() used store.{name}")

    manager = manager_for(store)
    manager.store = KeysOnly()  # type: ignore[assignment]

    assert [u async for u in manager.users(tenant="biz_1")] == ["user_1"]


async def test_users_refuses_a_bad_page_size(store: TokenStore) -> None:
    with pytest.raises(ConfigurationError, match="page_size"):
        [u async for u in manager_for(store).users(tenant="biz_1", page_size=0)]
