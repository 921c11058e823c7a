"""The mock on real sockets: on_free_port, serve_in_thread, the CLI, the pytest plugin."""

from __future__ import annotations

import os
import secrets
import selectors
import subprocess
import sys

import httpx
import pytest
from mock_support import Flow, authorize_params, bearer

from whop_oauth.testing import MockWhop


async def test_the_server_fixture_runs_a_full_flow_over_a_real_port(
    mock_whop_server: MockWhop,
) -> None:
    issuer = mock_whop_server.issuer
    assert issuer.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=issuer) as http:
        document = (await http.get("/.well-known/openid-configuration")).json()
        assert document["issuer"] == issuer
        assert document["token_endpoint"] == f"{issuer}/oauth/token"
        flow = Flow(http)
        tokens = await flow.sign_in()
        account = await http.get("/api/v1/accounts/me", headers=bearer(tokens["access_token"]))
    assert account.json()["id"] == "user_mock1"


def test_serve_in_thread_serves_on_the_issuers_port() -> None:
    with MockWhop.on_free_port() as probe:
        port = int(probe.issuer.rsplit(":", 1)[1])
    mock = MockWhop(f"http://127.0.0.1:{port}")
    with mock.serve_in_thread() as base_url:
        assert base_url == mock.issuer
        assert httpx.get(f"{base_url}/.well-known/jwks.json").json() == mock.jwks()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/.well-known/jwks.json")


def test_serve_in_thread_refuses_an_issuer_it_cannot_match() -> None:
    with pytest.raises(ValueError, match="on_free_port"), MockWhop().serve_in_thread():
        pass
    fixed_port = MockWhop("http://127.0.0.1:8765")
    with pytest.raises(ValueError, match="on_free_port"), fixed_port.serve_in_thread(port=0):
        pass


def test_an_issuer_with_a_path_is_served_under_that_path() -> None:
    with MockWhop.on_free_port() as probe:
        port = int(probe.issuer.rsplit(":", 1)[1])
    mock = MockWhop(f"http://127.0.0.1:{port}/whop")
    with mock.serve_in_thread() as base_url:
        document = httpx.get(f"{base_url}/.well-known/openid-configuration").json()
    assert document["jwks_uri"] == f"http://127.0.0.1:{port}/whop/.well-known/jwks.json"


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("no ready line from the mock Whop CLI")
    return process.stdout.readline().strip()


def test_the_cli_prints_a_ready_line_and_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "whop_oauth.testing", "--port", "0", "--consent"]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            line = _read_line(process, timeout=20)
            prefix, _, issuer = line.rpartition(" ")
            assert prefix == "mock-whop ready"
            document = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
            assert document["issuer"] == issuer
            params = authorize_params(secrets.token_urlsafe(48))
            page = httpx.get(f"{issuer}/oauth/authorize", params=params)
            assert "Authorize Mock App" in page.text
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_pytest_plugin_imports_nothing_of_the_mock() -> None:
    code = (
        "import sys, whop_oauth.testing._pytest_plugin\n"
        "heavy = ('whop_oauth.testing._mock', 'uvicorn')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_in_process_fixture_is_a_fresh_mock(mock_whop: MockWhop) -> None:
    assert mock_whop.stats.authorize == 0
    assert mock_whop.issuer == "https://mock-whop.test"
    tokens = mock_whop.issue_tokens(company_id="biz_1")
    assert [grant.company_id for grant in mock_whop.grants] == ["biz_1"]
    assert tokens["refresh_token"] not in repr(mock_whop.grants) + repr(mock_whop)
