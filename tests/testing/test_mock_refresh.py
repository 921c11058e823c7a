"""The mock's refresh grant: rotation, reuse detection, company_id, concurrency."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
from mock_support import Flow, bearer

from whop_oauth.testing import MockWhop


async def test_each_refresh_rotates_the_refresh_token(mock_whop: MockWhop, flow: Flow) -> None:
    first = await flow.sign_in()
    second = (await flow.refresh(first["refresh_token"])).json()
    third = (await flow.refresh(second["refresh_token"])).json()
    refresh_tokens = {t["refresh_token"] for t in (first, second, third)}
    assert len(refresh_tokens) == 3
    assert mock_whop.stats.token_refresh == 2
    assert [grant.rotations for grant in mock_whop.grants] == [2]
    info = await flow.http.get("/oauth/userinfo", headers=bearer(third["access_token"]))
    assert info.status_code == 200


async def test_a_replayed_refresh_token_revokes_the_whole_family(
    mock_whop: MockWhop, flow: Flow
) -> None:
    first = await flow.sign_in()
    second = (await flow.refresh(first["refresh_token"])).json()
    replay = await flow.refresh(first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert mock_whop.stats.refresh_reuse_detected == 1
    assert mock_whop.is_revoked(second["refresh_token"])
    assert (await flow.refresh(second["refresh_token"])).json()["error"] == "invalid_grant"
    info = await flow.http.get("/oauth/userinfo", headers=bearer(second["access_token"]))
    assert info.status_code == 401
    assert [grant.revoked for grant in mock_whop.grants] == [True]


async def test_an_unknown_refresh_token_is_invalid_grant(mock_whop: MockWhop, flow: Flow) -> None:
    response = await flow.refresh("not-a-token-we-issued")
    assert response.json()["error"] == "invalid_grant"
    assert mock_whop.stats.invalid_grant == 1


async def test_a_company_grant_needs_the_same_company_id_on_refresh(flow: Flow) -> None:
    tokens = await flow.sign_in(company_id="biz_1")
    missing = await flow.refresh(tokens["refresh_token"])
    assert missing.json()["error"] == "invalid_request"
    other = await flow.refresh(tokens["refresh_token"], company_id="biz_2")
    assert other.json()["error"] == "invalid_grant"
    same = await flow.refresh(tokens["refresh_token"], company_id="biz_1")
    assert same.status_code == 200, "failed company checks must not spend the token"


async def test_a_user_grant_refuses_a_company_id_on_refresh(flow: Flow) -> None:
    tokens = await flow.sign_in()
    response = await flow.refresh(tokens["refresh_token"], company_id="biz_1")
    assert response.json()["error"] == "invalid_grant"


async def test_a_refresh_may_narrow_the_scope_but_not_widen_it(flow: Flow) -> None:
    tokens = await flow.sign_in(scope="openid profile")
    wider = await flow.refresh(tokens["refresh_token"], scope="openid email")
    assert wider.json()["error"] == "invalid_scope"
    narrower = (await flow.refresh(tokens["refresh_token"], scope="openid")).json()
    assert narrower["scope"] == "openid"


async def test_refresh_tokens_expire_after_refresh_token_ttl() -> None:
    now = [1_800_000_000.0]
    mock = MockWhop(refresh_token_ttl=60, clock=lambda: now[0])
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        flow = Flow(http)
        tokens = await flow.sign_in()
        now[0] += 60
        response = await flow.refresh(tokens["refresh_token"])
    assert response.json()["error_description"] == "the refresh token has expired"


async def test_expired_access_tokens_are_refused_until_refreshed(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    mock_whop.expire_access_tokens()
    expired = await flow.http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    fresh = (await flow.refresh(tokens["refresh_token"])).json()
    ok = await flow.http.get("/oauth/userinfo", headers=bearer(fresh["access_token"]))
    assert ok.status_code == 200


async def test_one_of_a_thousand_concurrent_refreshes_of_one_token_wins(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    responses = await asyncio.gather(*(flow.refresh(tokens["refresh_token"]) for _ in range(1000)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 999
    stats = mock_whop.stats
    assert stats.token_refresh == 1
    assert stats.refresh_reuse_detected == 999
    assert mock_whop.grants[0].revoked, "the losers' replays revoke the winner's family too"


def test_one_of_many_threads_refreshing_one_token_wins(mock_whop: MockWhop) -> None:
    """Each thread runs its own event loop into the same mock: real contention on its lock."""
    tokens = mock_whop.issue_tokens()
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    body["client_id"] = "app_mock"

    async def post() -> int:
        transport = mock_whop.transport()
        async with httpx.AsyncClient(transport=transport, base_url=mock_whop.issuer) as http:
            return (await http.post("/oauth/token", data=body)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(lambda _: asyncio.run(post()), range(200)))
    assert statuses == [200] + [400] * 199
    assert mock_whop.stats.token_refresh == 1


def test_one_of_many_clients_refreshing_over_a_real_port_wins(mock_whop_server: MockWhop) -> None:
    tokens = mock_whop_server.issue_tokens()
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    body["client_id"] = "app_mock"
    with httpx.Client(base_url=mock_whop_server.issuer) as http, ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: http.post("/oauth/token", data=body), range(64)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 63
    assert mock_whop_server.stats.token_refresh == 1
