"""Fault injection: canned errors, Retry-After, repeated faults, late replies."""

from __future__ import annotations

import asyncio

import pytest
from mock_support import Flow, bearer

from whop_oauth.testing import MockWhop


async def test_fail_next_replaces_one_token_response_then_the_mock_recovers(
    mock_whop: MockWhop, flow: Flow
) -> None:
    code = await flow.code()
    mock_whop.fail_next("token", 500)
    failed = await flow.exchange(code)
    assert failed.status_code == 500
    assert failed.json()["error"] == "server_error"
    assert (await flow.exchange(code)).status_code == 200, "the faulted request did nothing"
    stats = mock_whop.stats
    assert (stats.faults_injected, stats.token_requests, stats.token_code) == (1, 2, 1)


async def test_a_rate_limit_fault_carries_retry_after(mock_whop: MockWhop, flow: Flow) -> None:
    tokens = await flow.sign_in()
    mock_whop.fail_next("userinfo", 429, headers={"Retry-After": "7"}, times=2)
    for _ in range(2):
        response = await flow.http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.json()["error"] == "rate_limit_exceeded"
    ok = await flow.http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert ok.status_code == 200


async def test_a_fault_can_send_any_body(mock_whop: MockWhop, flow: Flow) -> None:
    mock_whop.fail_next(
        "revoke", 503, body=b"<html>down</html>", headers={"Content-Type": "text/html"}
    )
    mock_whop.fail_next("introspect", 400, body={"error": "invalid_request"})
    revoked = await flow.http.post("/oauth/revoke", json={"token": "t", "client_id": "app_mock"})
    assert (revoked.status_code, revoked.text) == (503, "<html>down</html>")
    assert revoked.headers["content-type"] == "text/html"
    inspected = await flow.http.post("/oauth/introspect", json={"token": "t"})
    assert inspected.json() == {"error": "invalid_request"}


def test_fail_next_rejects_unknown_endpoints(mock_whop: MockWhop) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        mock_whop.fail_next("tokens", 500)


async def test_a_delayed_refresh_is_done_even_if_the_client_gave_up(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    mock_whop.delay_next("token", 60)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flow.refresh(tokens["refresh_token"]), timeout=0.5)
    assert mock_whop.stats.token_refresh == 1
    blind_retry = await flow.refresh(tokens["refresh_token"])
    assert blind_retry.json()["error"] == "invalid_grant"
    assert mock_whop.grants[0].revoked
