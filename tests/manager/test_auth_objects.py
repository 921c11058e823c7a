"""``manager.auth()`` hands out one ``UserTokenAuth`` per (tenant, user), within a bound,
and each one still sends only its own user's token."""

from __future__ import annotations

import httpx
import pytest
from threads import errors_in_threads

from whop_oauth import (
    ConfigurationError,
    InvalidTokenKey,
    OAuthClient,
    Token,
    TokenManager,
    whop_metadata,
)
from whop_oauth._manager import AUTHS_KEPT
from whop_oauth.stores import MemoryTokenStore

ISSUER = "https://id.example"
ME = f"{ISSUER}/api/v1/me"


@pytest.fixture
def manager() -> TokenManager:
    client = OAuthClient(
        client_id="app_1", redirect_uri="http://127.0.0.1/cb", provider=whop_metadata(ISSUER)
    )
    return TokenManager(client, MemoryTokenStore())


def echo_bearer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=request.headers.get("Authorization", ""))


def test_one_user_gets_the_same_auth_object_every_time(manager: TokenManager) -> None:
    first = manager.auth(user="user_1", tenant="biz_1")

    assert manager.auth(user="user_1", tenant="biz_1") is first
    assert manager.auth(user="user_2", tenant="biz_1") is not first
    assert manager.auth(user="user_1", tenant="biz_2") is not first
    assert manager.auth(user="user_1") is not first  # the default tenant is another tenant


def test_tenant_and_user_are_not_confused(manager: TokenManager) -> None:
    # The same two strings in swapped roles are another grant.
    one = manager.auth(user="a", tenant="b")
    other = manager.auth(user="b", tenant="a")

    assert one is not other
    assert repr(one) == "<UserTokenAuth tenant='b' user='a'>"
    assert repr(other) == "<UserTokenAuth tenant='a' user='b'>"


def test_an_auth_with_extra_origins_is_made_for_its_caller_alone(manager: TokenManager) -> None:
    plain = manager.auth(user="user_1")
    wider = manager.auth(user="user_1", allowed_origins=["https://files.example"])

    assert wider is not plain
    assert manager.auth(user="user_1", allowed_origins=["https://files.example"]) is not wider
    assert wider.sends_token_to("https://files.example/x")
    # The remembered one did not take the other's origins.
    assert manager.auth(user="user_1") is plain
    assert not plain.sends_token_to("https://files.example/x")


def test_remembered_auth_objects_are_bounded(manager: TokenManager) -> None:
    oldest = manager.auth(user="user_oldest")

    for index in range(AUTHS_KEPT):  # one more user than the bound, with the first
        manager.auth(user=f"user_{index}")

    assert manager._shared_auth.cache_info().currsize == AUTHS_KEPT
    rebuilt = manager.auth(user="user_oldest")
    assert rebuilt is not oldest
    assert repr(rebuilt) == repr(oldest)


async def test_shared_auth_objects_send_each_users_own_token(manager: TokenManager) -> None:
    for user in ("user_1", "user_2"):
        token = Token(access_token=f"access-{user}", expires_at=None, refresh_token=None)
        await manager.store.put(manager.key(user=user), token)
    transport = httpx.MockTransport(echo_bearer)

    async with httpx.AsyncClient(transport=transport) as http:
        for _ in range(2):  # the second round uses the remembered objects
            for user in ("user_1", "user_2"):
                answer = await http.get(ME, auth=manager.auth(user=user))
                assert answer.text == f"Bearer access-{user}"


async def test_an_unhashable_user_still_gets_a_typed_error(manager: TokenManager) -> None:
    auth = manager.auth(user=["user_1"])  # type: ignore[arg-type]

    async with httpx.AsyncClient(transport=httpx.MockTransport(echo_bearer), auth=auth) as http:
        with pytest.raises(InvalidTokenKey, match=r"TokenKey\.user"):
            await http.get(ME)
    assert manager._shared_auth.cache_info().currsize == 0


async def test_the_token_cache_keeps_swapped_tenant_and_user_apart(
    manager: TokenManager,
) -> None:
    for user, tenant in (("a", "b"), ("b", "a")):
        token = Token(access_token=f"access-{tenant}-{user}", expires_at=None, refresh_token=None)
        await manager.store.put(manager.key(user=user, tenant=tenant), token)

    for _ in range(2):  # the second round is served from the cache
        assert (await manager.get_token(user="a", tenant="b")).access_token == "access-b-a"
        assert (await manager.get_token(user="b", tenant="a")).access_token == "access-a-b"


def test_an_empty_string_of_origins_is_still_refused(manager: TokenManager) -> None:
    with pytest.raises(ConfigurationError, match="not one string"):
        manager.auth(user="user_1", allowed_origins="")


def test_threads_asking_at_once_never_fail_and_keep_the_bound(manager: TokenManager) -> None:
    # user_http_client, a plain function, runs in worker threads under plain endpoints.
    def ask(thread: int) -> None:
        for index in range(1500):
            user = f"user_{thread}_{index}"
            assert repr(manager.auth(user=user)) == (
                f"<UserTokenAuth tenant='default' user='{user}'>"
            )

    assert errors_in_threads(ask) == []
    assert manager._shared_auth.cache_info().currsize == AUTHS_KEPT


def test_auth_objects_made_for_one_caller_keep_its_tenant_and_user(
    manager: TokenManager,
) -> None:
    wider = manager.auth(user="user_1", tenant="biz_2", allowed_origins=["https://files.example"])
    unhashable = manager.auth(user=["user_1"], tenant="biz_2")  # type: ignore[arg-type]

    assert repr(wider) == "<UserTokenAuth tenant='biz_2' user='user_1'>"
    assert repr(unhashable) == "<UserTokenAuth tenant='biz_2' user=['user_1']>"
