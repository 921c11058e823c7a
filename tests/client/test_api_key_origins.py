"""APIKeyAuth sends its key to its allowed origins only: never to another host or to http,
not even on a redirect followed by httpx (which re-sends every header but Authorization)."""

from __future__ import annotations

import httpx
import pytest

from whop_oauth import APIKeyAuth, ConfigurationError

KEY = "wk_live_" + "s3cret" * 4
API = "https://api.whop.com"
PLAIN = "http://api.whop.com"
EVIL = "https://evil.example"


class Provider:
    """Whop's API behind a MockTransport: some paths redirect elsewhere; every hop recorded."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (url, the raw request head)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        head = "\n".join(f"{k}: {v}" for k, v in request.headers.multi_items())
        self.seen.append((str(request.url), head))
        moves = {
            "/api/v1/moved": f"{EVIL}/collect",  # another host
            "/api/v1/down": f"{PLAIN}/api/v1/plain",  # https to http on the same host
            "/api/v1/here": f"{API}/api/v1/there",  # same origin
            "/api/v1/port": "https://api.whop.com:8443/api/v1/other-port",
        }
        if request.url.host == "api.whop.com" and request.url.path in moves:
            status = 307 if request.method == "POST" else 302
            return httpx.Response(status, headers={"Location": moves[request.url.path]})
        return httpx.Response(200)

    def heads_at(self, prefix: str) -> list[str]:
        return [head for url, head in self.seen if url.startswith(prefix)]


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_key_never_follows_a_redirect_to_another_host_or_to_http(
    header: str, method: str
) -> None:
    provider = Provider()
    auth = APIKeyAuth(KEY, header=header)
    async with httpx.AsyncClient(
        auth=auth,
        event_hooks=auth.event_hooks,
        transport=httpx.MockTransport(provider),
        follow_redirects=True,  # as the official whop-sdk client does
    ) as http:
        for path in ("moved", "down", "here", "port"):
            response = await http.request(method, f"{API}/api/v1/{path}", content=b"{}")
            assert response.status_code == 200

    elsewhere = [
        head
        for url, head in provider.seen
        if url.startswith((EVIL, PLAIN, "https://api.whop.com:8443"))
    ]
    assert len(elsewhere) == 3
    assert not any(KEY in head for head in elsewhere)
    same_origin = provider.heads_at(f"{API}/api/v1/")
    assert len(same_origin) == 5  # four first hops and the same-origin redirect
    assert all(KEY in head for head in same_origin)


def test_a_sync_client_with_the_hooks_keeps_the_key_off_other_hosts_too() -> None:
    provider = Provider()
    auth = APIKeyAuth(KEY, header="X-API-Key")
    with httpx.Client(
        auth=auth,
        event_hooks=auth.event_hooks,
        transport=httpx.MockTransport(provider),
        follow_redirects=True,
    ) as http:
        http.get(f"{API}/api/v1/moved")
        http.get(f"{API}/api/v1/down")

    assert provider.heads_at(EVIL)
    assert provider.heads_at(PLAIN)
    assert not any(KEY in head for head in provider.heads_at(EVIL) + provider.heads_at(PLAIN))
    assert KEY in provider.heads_at(f"{API}/api/v1/moved")[0]


async def test_a_custom_header_key_without_its_hooks_is_never_sent_and_the_error_says_why() -> None:
    provider = Provider()
    async with httpx.AsyncClient(
        auth=APIKeyAuth(KEY, header="X-API-Key"),
        transport=httpx.MockTransport(provider),
        follow_redirects=True,
    ) as http:
        with pytest.raises(ConfigurationError, match="event_hooks") as caught:
            await http.get(f"{API}/api/v1/moved")

    assert [url for url, _ in provider.seen] == [f"{API}/api/v1/moved", f"{EVIL}/collect"]
    assert not any(KEY in head for _, head in provider.seen)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"{EVIL}/steal",
        f"{PLAIN}/api/v1/me",  # same host, but http
        "https://api.whop.com:8443/api/v1/me",  # same host, another port
        "https://api.whop.com.evil.example/api/v1/me",
        "https://sandbox-api.whop.com/api/v1/me",  # not allowed unless listed
    ],
)
@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
async def test_the_key_is_refused_to_an_absolute_url_of_another_origin(
    url: str, header: str
) -> None:
    provider = Provider()
    auth = APIKeyAuth(KEY, header=header)
    async with httpx.AsyncClient(
        auth=auth, event_hooks=auth.event_hooks, transport=httpx.MockTransport(provider)
    ) as http:
        with pytest.raises(ConfigurationError, match="not an allowed origin") as caught:
            await http.get(url)

    assert provider.seen == []  # nothing left the process
    assert KEY not in str(caught.value)


async def test_allowed_origins_replace_the_default_and_compare_scheme_host_and_port() -> None:
    provider = Provider()
    auth = APIKeyAuth(
        KEY,
        header="X-API-Key",
        allowed_origins=["https://sandbox-api.whop.com/any/path", "http://127.0.0.1:8765"],
    )
    async with httpx.AsyncClient(
        auth=auth, event_hooks=auth.event_hooks, transport=httpx.MockTransport(provider)
    ) as http:
        await http.get("https://sandbox-api.whop.com/api/v1/me")
        await http.get("http://127.0.0.1:8765/api/v1/me")  # loopback http may be allowed
        with pytest.raises(ConfigurationError):
            await http.get(f"{API}/api/v1/me")  # the default is replaced, not extended

    assert [KEY in head for _, head in provider.seen] == [True, True]
    assert auth.sends_key_to("https://sandbox-api.whop.com:443/x")
    assert not auth.sends_key_to("http://127.0.0.1:8766/x")
    assert not auth.sends_key_to("/relative")


@pytest.mark.parametrize(
    "origins",
    [
        ["http://api.example"],  # plain http off loopback
        "https://api.whop.com",  # one string, not a list
        [],
        ["not a url"],
        ["https://api.whop.com#frag"],
    ],
)
def test_unusable_allowed_origins_are_refused_at_construction(origins: object) -> None:
    with pytest.raises(ConfigurationError):
        APIKeyAuth(KEY, allowed_origins=origins)  # type: ignore[arg-type]


def test_http_origins_off_loopback_need_allow_insecure_http() -> None:
    auth = APIKeyAuth(KEY, allowed_origins=["http://api.example"], allow_insecure_http=True)

    assert auth.sends_key_to("http://api.example/x")
    assert not auth.sends_key_to("https://api.example/x")  # another scheme, another origin


def test_a_malformed_url_is_no_allowed_origin_and_a_malformed_origin_is_refused() -> None:
    assert APIKeyAuth("key_1").sends_key_to("http://[::1") is False
    with pytest.raises(ConfigurationError, match="allowed origin"):
        APIKeyAuth("key_1", allowed_origins=["https://a:x/"])
