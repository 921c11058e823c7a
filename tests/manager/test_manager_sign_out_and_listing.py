"""TokenManager's session sign-out and user listing at their edges: other tenants untouched,
a write racing the last sign-out, an undecryptable grant, and pages read as asked."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_driver import USER, sign_in
from store_fixtures import StoreFactory

from whop_oauth import (
    ConfigurationError,
    InvalidTokenKey,
    NoGrantError,
    OAuthClient,
    RefreshHooks,
    Token,
    TokenKey,
    TokenManager,
    generate_encryption_key,
)
from whop_oauth.stores import MemoryTokenStore, StoredToken
from whop_oauth.testing import MockWhop


class RacingStore(MemoryTokenStore):
    """A memory store where ``race`` runs right after the next grant read (once)."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Any = None

    async def get(self, key: TokenKey) -> StoredToken | None:
        row = await super().get(key)
        race, self.race = self.race, None
        if race is not None:
            await race()
        return row


@pytest.fixture
def store() -> RacingStore:
    return RacingStore()


def hooks_into(deleted: list[tuple[TokenKey, str]]) -> RefreshHooks:
    return RefreshHooks(on_grant_deleted=lambda key, reason: deleted.append((key, reason)))


async def open_session(manager: TokenManager, key: TokenKey) -> str:
    session_id = secrets.token_urlsafe(16)
    await manager.sessions.create(session_id, key, lifetime=3600)
    return session_id


# -- sign-out ---------------------------------------------------------------------------------


async def test_signing_out_everywhere_in_one_tenant_leaves_the_other_tenant_signed_in(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: RacingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    in_a, in_b = await sign_in(client, mock_http), await sign_in(client, mock_http)
    await manager.save(in_a, user=USER, tenant="biz_a")
    await manager.save(in_b, user=USER, tenant="biz_b")
    key_a, key_b = manager.key(user=USER, tenant="biz_a"), manager.key(user=USER, tenant="biz_b")
    for key in (key_a, key_a, key_b):
        await open_session(manager, key)

    assert await manager.sign_out_everywhere(user=USER, tenant="biz_a") == 2

    assert await store.get(key_a) is None
    assert mock.is_revoked(in_a.refresh_token)  # type: ignore[arg-type]
    assert await manager.sessions.count_live(key_b) == 1
    assert await manager.access_token(user=USER, tenant="biz_b") == in_b.access_token
    assert not mock.is_revoked(in_b.refresh_token)  # type: ignore[arg-type]


async def test_the_last_sign_out_tells_the_hook_and_forgets_the_cached_token(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: RacingStore, mock: MockWhop
) -> None:
    deleted: list[tuple[TokenKey, str]] = []
    manager = TokenManager(client, store, hooks=hooks_into(deleted))
    grant = await sign_in(client, mock_http)
    await manager.save(grant, user=USER)
    session = await open_session(manager, manager.key(user=USER))
    assert await manager.access_token(user=USER) == grant.access_token  # now cached

    assert await manager.end_session(session) is True

    assert deleted == [(manager.key(user=USER), "sign_out")]
    assert mock.is_revoked(grant.refresh_token)  # type: ignore[arg-type]
    with pytest.raises(NoGrantError):
        await manager.access_token(user=USER)


async def test_a_sign_in_landing_during_the_last_sign_out_keeps_its_grant(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: RacingStore, mock: MockWhop
) -> None:
    manager = TokenManager(client, store)
    key = manager.key(user=USER)
    old, newer = await sign_in(client, mock_http), await sign_in(client, mock_http)
    await manager.save(old, user=USER)
    session = await open_session(manager, key)

    async def sign_in_lands() -> None:  # another device: a new grant and a new session
        await store.put(key, newer)
        await open_session(manager, key)

    store.race = sign_in_lands
    assert await manager.end_session(session) is True

    kept = await store.get(key)
    assert kept is not None
    assert kept.token == newer
    assert not mock.is_revoked(newer.refresh_token)  # type: ignore[arg-type]


async def test_a_refresh_landing_during_the_last_sign_out_is_ended_too(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: RacingStore, mock: MockWhop
) -> None:
    deleted: list[tuple[TokenKey, str]] = []
    manager = TokenManager(client, store, hooks=hooks_into(deleted))
    other_process = TokenManager(client, store)
    key = manager.key(user=USER)
    await manager.save(await sign_in(client, mock_http), user=USER)
    session = await open_session(manager, key)
    rotated: list[Token] = []

    async def refresh_lands() -> None:  # a background job elsewhere: no new session
        rotated.append(await other_process.refresh(user=USER))

    store.race = refresh_lands
    assert await manager.end_session(session) is True

    assert await store.get(key) is None
    assert deleted == [(key, "sign_out")]
    assert mock.is_revoked(rotated[0].refresh_token)  # type: ignore[arg-type]


async def test_the_last_sign_out_deletes_a_grant_nobody_can_decrypt(
    client: OAuthClient, tmp_path: Path, open_stores: StoreFactory, mock_http: httpx.AsyncClient
) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    writer = TokenManager(client, await open_stores(url))
    await writer.save(await sign_in(client, mock_http), user=USER)
    rekeyed = await open_stores(url, encryption_keys=[generate_encryption_key()])
    manager = TokenManager(client, rekeyed)
    session = await open_session(manager, manager.key(user=USER))

    assert await manager.end_session(session) is True

    assert await (await open_stores(url)).get(writer.key(user=USER)) is None


# -- listing users ----------------------------------------------------------------------------


class PageSpy:
    """``grant_keys`` over a memory store, recording what each page asked for."""

    def __init__(self, store: MemoryTokenStore) -> None:
        self._store = store
        self.asked: list[tuple[TokenKey | None, int | None]] = []

    async def grant_keys(
        self, tenant: str, *, after: TokenKey | None = None, limit: int | None = None
    ) -> list[TokenKey]:
        self.asked.append((after, limit))
        assert len(self.asked) < 20, "users() keeps asking for pages"
        return await self._store.grant_keys(tenant, after=after, limit=limit)


async def listed(manager: TokenManager, **options: Any) -> list[str]:
    return [user async for user in manager.users(**options)]


async def test_users_reads_the_pages_it_asks_for_one_after_the_other(
    client: OAuthClient, store: RacingStore
) -> None:
    keys = [client.token_key(f"user_{n}", "biz_1") for n in range(7)]
    for key in keys:
        await store.put(key, Token("at", refresh_token="rt", expires_at=time.time() + 60))
    manager = TokenManager(client, store)
    spy = PageSpy(store)
    manager.store = spy  # type: ignore[assignment]

    assert await listed(manager, tenant="biz_1", page_size=3) == [k.user for k in keys]
    assert spy.asked == [(None, 3), (keys[2], 3), (keys[5], 3)]
    spy.asked.clear()
    assert await listed(manager, tenant="biz_1", page_size=1) == [k.user for k in keys]
    assert len(spy.asked) == 8


@pytest.mark.parametrize("page_size", [0, -1, True, False, 2.0, "3", None])
async def test_users_refuses_a_page_size_that_is_not_a_positive_int(
    client: OAuthClient, store: RacingStore, page_size: Any
) -> None:
    with pytest.raises(ConfigurationError, match=r"^page_size must be a positive int$"):
        await listed(TokenManager(client, store), page_size=page_size)


async def test_users_on_a_store_that_cannot_list_names_the_store(
    client: OAuthClient, store: RacingStore
) -> None:
    class NoListing:
        """A store from before ``grant_keys``."""

    manager = TokenManager(client, store)
    manager.store = NoListing()  # type: ignore[assignment]
    with pytest.raises(ConfigurationError, match=r"^NoListing cannot list its grants"):
        await listed(manager)


async def test_users_checks_the_tenant_before_asking_the_store(
    client: OAuthClient, store: RacingStore
) -> None:
    manager = TokenManager(client, store)
    spy = PageSpy(store)
    manager.store = spy  # type: ignore[assignment]
    with pytest.raises(InvalidTokenKey, match="tenant"):
        await listed(manager, tenant="")
    assert spy.asked == []
