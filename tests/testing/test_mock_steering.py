"""Steering the mock beyond canned errors: requests it loses or holds before doing any
work (``drop_next``, ``hold_next``; nothing is consumed, so the same grant works
afterwards), and id_tokens that say something else (``override_id_token_claims``)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from mock_support import Flow

from whop_oauth.testing import MockWhop


async def test_a_held_request_arrives_waits_then_is_processed(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    mock_whop.hold_next("token", 0.3)
    started = time.monotonic()
    refresh = asyncio.create_task(flow.refresh(tokens["refresh_token"]))
    assert await asyncio.to_thread(mock_whop.wait_for_fault, 5)
    assert mock_whop.stats.token_refresh == 0  # arrived, not processed yet
    response = await refresh
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 0.3
    assert mock_whop.stats.token_refresh == 1


async def test_a_reset_in_process_is_a_cut_connection_and_consumes_nothing(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    mock_whop.drop_next("token", "reset")
    with pytest.raises(httpx.RemoteProtocolError):
        await flow.refresh(tokens["refresh_token"])
    assert mock_whop.wait_for_fault(0)
    stats = mock_whop.stats
    assert (stats.faults_injected, stats.token_refresh) == (1, 0)
    assert (await flow.refresh(tokens["refresh_token"])).status_code == 200


async def test_on_a_real_port_a_reset_cuts_the_body_and_a_stall_never_answers(
    mock_whop_server: MockWhop,
) -> None:
    mock = mock_whop_server
    tokens = mock.issue_tokens()
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    body["client_id"] = "app_mock"
    timeout = httpx.Timeout(5, read=0.3)
    async with httpx.AsyncClient(base_url=mock.issuer, timeout=timeout) as http:
        mock.drop_next("token", "reset")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/oauth/token", data=body)
        mock.drop_next("token", "stall")
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/oauth/token", data=body)
        assert mock.stats.token_refresh == 0
        assert (await http.post("/oauth/token", data=body)).status_code == 200


def test_wait_for_fault_is_false_while_no_fault_was_taken(mock_whop: MockWhop) -> None:
    mock_whop.fail_next("token", 500)  # a canned answer is not a held or dropped request
    assert mock_whop.wait_for_fault(0.01) is False


def test_drop_and_hold_take_known_endpoints_and_ways_only(mock_whop: MockWhop) -> None:
    with pytest.raises(ValueError, match="how is one of"):
        mock_whop.drop_next("token", "vanish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown endpoint"):
        mock_whop.hold_next("tokens", 1)


async def test_overridden_id_token_claims_are_signed_into_every_answer_until_cleared(
    mock_whop: MockWhop, flow: Flow
) -> None:
    keys = KeySet.import_key_set(mock_whop.jwks())
    tokens = await flow.sign_in()
    mock_whop.override_id_token_claims(sub="user_someone_else", acr="1")
    refreshed = (await flow.refresh(tokens["refresh_token"])).json()
    claims = jwt.decode(refreshed["id_token"], keys, algorithms=["ES256"]).claims
    assert (claims["sub"], claims["acr"], claims["aud"]) == ("user_someone_else", "1", "app_mock")
    mock_whop.override_id_token_claims()
    again = (await flow.refresh(refreshed["refresh_token"])).json()
    claims = jwt.decode(again["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["sub"] == "user_mock1"
    assert "acr" not in claims
