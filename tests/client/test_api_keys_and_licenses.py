"""APIKeyAuth and Whop license validation."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
import respx

from whop_oauth import (
    APIKeyAuth,
    ConfigurationError,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
    TransportError,
    validate_license,
)

API_KEY = "apik_company_key"
LICENSE = "L-ABCD-1234"
VALIDATE = f"https://api.whop.com/api/v2/memberships/{LICENSE}/validate_license"


def sent_headers(auth: APIKeyAuth) -> httpx.Headers:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(record)
    with httpx.Client(auth=auth, event_hooks=auth.event_hooks, transport=transport) as http:
        http.get("https://api.whop.com/api/v1/me")  # the sync client takes the same hooks
    return seen[0].headers


def test_api_keys_go_in_a_bearer_authorization_header_by_default() -> None:
    assert sent_headers(APIKeyAuth(API_KEY))["Authorization"] == f"Bearer {API_KEY}"


def test_another_header_name_carries_the_raw_key() -> None:
    headers = sent_headers(APIKeyAuth("wk_live_abc", header="X-API-Key"))

    assert headers["X-API-Key"] == "wk_live_abc"
    assert "Authorization" not in headers


async def test_the_auth_works_with_an_async_client(router: respx.MockRouter) -> None:
    route = router.get("https://api.example/v1/me").respond(200)
    auth = APIKeyAuth(API_KEY, allowed_origins=["https://api.example"])

    async with httpx.AsyncClient(auth=auth) as http:
        await http.get("https://api.example/v1/me")

    assert route.calls.last.request.headers["Authorization"] == f"Bearer {API_KEY}"


def test_a_test_key_is_refused_in_a_live_configuration() -> None:
    with pytest.raises(ConfigurationError, match="test API key") as caught:
        APIKeyAuth("wk_test_abc", environment="live")

    assert "wk_test_abc" not in str(caught.value)


def test_a_live_key_is_refused_in_a_test_configuration() -> None:
    with pytest.raises(ConfigurationError, match="live API key"):
        APIKeyAuth("wk_live_abc", environment="test")


def test_matching_and_unmarked_keys_are_accepted_in_either_environment() -> None:
    APIKeyAuth("wk_live_abc", environment="live")
    APIKeyAuth("wk_test_abc", environment="test")
    APIKeyAuth("apik_unmarked", environment="live")
    APIKeyAuth("sk_prod_1", environment="live", live_prefixes=("sk_prod_",))
    with pytest.raises(ConfigurationError):
        APIKeyAuth("sk_dev_1", environment="live", test_prefixes=("sk_dev_",))


@pytest.mark.parametrize(
    ("key", "header"),
    [("", "Authorization"), ("has space", "Authorization"), ("k\r\nX: y", "Authorization"),
     ("ok", "Bad Header"), ("ok", "")],
)  # fmt: skip
def test_keys_and_headers_that_could_break_a_request_are_refused(key: str, header: str) -> None:
    with pytest.raises(ConfigurationError):
        APIKeyAuth(key, header=header)


def test_the_repr_never_shows_the_key() -> None:
    auth = APIKeyAuth("wk_live_supersecret", header="X-API-Key", environment="live")

    assert "supersecret" not in repr(auth)
    assert repr(auth) == "APIKeyAuth(header='X-API-Key', environment='live')"


async def test_a_valid_license_returns_the_membership(router: respx.MockRouter) -> None:
    membership = {"id": "mem_1", "status": "active", "license_key": LICENSE}
    route = router.post(VALIDATE).respond(201, json=membership)

    result = await validate_license(LICENSE, api_key=API_KEY, metadata={"HWID": "hw-1"})

    assert result.valid
    assert result.status == "valid"
    assert result.membership_id == "mem_1"
    assert result.membership["status"] == "active"
    request = route.calls.last.request
    assert json.loads(request.content) == {"metadata": {"HWID": "hw-1"}}
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert LICENSE not in repr(result)


async def test_no_metadata_sends_an_empty_object(router: respx.MockRouter) -> None:
    route = router.post(VALIDATE).respond(201, json={"id": "mem_1"})

    await validate_license(LICENSE, api_key=API_KEY)

    assert json.loads(route.calls.last.request.content) == {"metadata": {}}


@pytest.mark.parametrize(("status", "expected"), [(400, "metadata_mismatch"), (404, "not_found")])
async def test_mismatch_and_not_found_are_answers_not_errors(
    router: respx.MockRouter, status: int, expected: str
) -> None:
    router.post(VALIDATE).respond(status, json={"error": {"message": "nope"}})

    result = await validate_license(LICENSE, api_key=API_KEY)

    assert result.status == expected
    assert not result.valid


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ServerUnavailableError), (401, ProviderError), (403, ProviderError),
     (429, RateLimitedError), (418, ServerUnavailableError)],
)  # fmt: skip
async def test_other_statuses_raise_without_the_key_in_the_message(
    router: respx.MockRouter, status: int, error: type[Exception]
) -> None:
    router.post(VALIDATE).respond(status)

    with pytest.raises(error) as caught:
        await validate_license(LICENSE, api_key=API_KEY)

    assert LICENSE not in str(caught.value)
    assert API_KEY not in str(caught.value)


async def test_license_validation_is_retried_on_503(
    router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post(VALIDATE).mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json={"id": "mem_1"})]
    )

    assert (await validate_license(LICENSE, api_key=API_KEY)).valid
    assert route.call_count == 2


async def test_the_license_key_is_quoted_into_one_path_segment(router: respx.MockRouter) -> None:
    route = router.post(
        "https://api.whop.com/api/v2/memberships/..%2F..%2Fadmin%3Fx%3D1/validate_license"
    ).respond(404)

    result = await validate_license("../../admin?x=1", api_key=API_KEY)

    assert result.status == "not_found"
    assert route.call_count == 1


async def test_the_license_key_stays_out_of_logs_and_transport_errors(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.post(VALIDATE).mock(side_effect=httpx.ConnectError(f"failed for {LICENSE}"))
    caplog.set_level(logging.DEBUG, logger="whop_oauth")

    with pytest.raises(TransportError) as caught:
        await validate_license(LICENSE, api_key=API_KEY)
    router.post(VALIDATE).respond(201, json={})
    await validate_license(LICENSE, api_key=API_KEY)

    assert LICENSE not in str(caught.value)
    assert caplog.records
    assert LICENSE not in caplog.text
    assert API_KEY not in caplog.text


@pytest.mark.parametrize("base_url", ["http://api.whop.com", "ftp://x"])
async def test_the_base_url_must_be_https(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        await validate_license(LICENSE, api_key=API_KEY, base_url=base_url)


@pytest.mark.parametrize("key", ["", "  ", ".", ".."])
async def test_an_empty_or_dot_segment_license_key_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError):
        await validate_license(key, api_key=API_KEY)


@contextmanager
def every_log_line() -> Iterator[list[str]]:
    """Every record of every logger, at DEBUG, formatted with its logger's name."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.name} {record.levelname} {record.getMessage()}")

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore", "whop_oauth")]
    loggers += [
        item
        for item in logging.root.manager.loggerDict.values()
        if isinstance(item, logging.Logger)
    ]
    saved = [(lg, lg.level, lg.propagate, lg.disabled) for lg in loggers]
    root_level = logging.root.level
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.propagate, lg.disabled = True, False
    logging.root.addHandler(handler)
    logging.root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logging.root.removeHandler(handler)
        logging.root.setLevel(root_level)
        for lg, level, propagate, disabled in saved:
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled


@asynccontextmanager
async def loopback_whop() -> AsyncIterator[str]:
    """A real socket answering every request with 201, so httpcore logs its DEBUG lines."""
    body = b'{"id":"mem_1"}'
    answer = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    answer += b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_no_log_line_of_any_logger_carries_the_license_key() -> None:
    key = "LICENSE-9F3A-77C1-SECRET"
    through_httpx = httpx.MockTransport(lambda request: httpx.Response(201, json={"id": "m"}))

    with every_log_line() as lines:
        async with httpx.AsyncClient(transport=through_httpx) as http:
            assert (await validate_license(key, api_key=API_KEY, http_client=http)).valid
        async with loopback_whop() as base:  # the real transport: httpcore's lines too
            assert (await validate_license(key, api_key=API_KEY, base_url=base)).valid

    text = "\n".join(lines)
    assert key not in text
    assert API_KEY not in text
    httpx_lines = [line for line in lines if line.startswith("httpx INFO HTTP Request: POST")]
    assert len(httpx_lines) == 2  # httpx did log both requests, with the key replaced
    assert all("/memberships/<license key>/validate_license" in line for line in httpx_lines)
    assert any(line.startswith("httpcore") for line in lines)


async def test_the_redaction_comes_back_after_logging_is_reconfigured(
    router: respx.MockRouter,
) -> None:
    router.post(VALIDATE).respond(201, json={"id": "mem_1"})
    await validate_license(LICENSE, api_key=API_KEY)
    logging.getLogger("httpx").filters.clear()  # e.g. an application's logging setup

    with every_log_line() as lines:
        await validate_license(LICENSE, api_key=API_KEY)

    assert lines
    assert LICENSE not in "\n".join(lines)


async def test_the_api_key_goes_only_to_the_base_urls_origin(router: respx.MockRouter) -> None:
    base = "https://sandbox-api.whop.com"
    route = router.post(f"{base}/api/v2/memberships/{LICENSE}/validate_license").respond(201)

    await validate_license(LICENSE, api_key=API_KEY, base_url=base)

    assert route.calls.last.request.headers["Authorization"] == f"Bearer {API_KEY}"
