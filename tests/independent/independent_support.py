"""Shared pieces for the tests against panva's oidc-provider (an independent server).

The server is ``oidc_server/server.mjs`` under Node.js; its npm packages are installed
once (``npm ci``, pinned by ``package-lock.json``) into ``oidc_server/node_modules``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from worker_group import WorkerGroup

from whop_oauth import OAuthClient, Token

SERVER_DIR = Path(__file__).with_name("oidc_server")
WORKER = Path(__file__).with_name("oidc_storm_worker.py")
REDIRECT_URI = "http://127.0.0.1/callback"  # as registered in server.mjs
SUBJECT = "user_independent"  # the account server.mjs signs everyone in as

#: The clients server.mjs registers: client_id -> (secret, token endpoint auth method).
CLIENTS: dict[str, tuple[str | None, str]] = {
    "client-post": ("client-post-secret-for-tests-only", "client_secret_post"),
    "client-basic": ("client-basic-secret-for-tests-only", "client_secret_basic"),
    "client-public": (None, "none"),
}


NODE_MAJOR_NEEDED = 20  # oidc-provider 9 (via jose 6) needs the global WebCrypto of Node 20+


def _node() -> str:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.fail("Node.js is not installed: run `make system-deps` (apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < NODE_MAJOR_NEEDED:
        pytest.fail(f"oidc-provider 9 needs Node.js {NODE_MAJOR_NEEDED}+, found {version.stdout}")
    return node


def install_server_packages() -> None:
    """``npm ci`` once per package-lock.json; a file lock keeps concurrent runs apart."""
    lock_digest = hashlib.sha256((SERVER_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = SERVER_DIR / "node_modules" / ".installed-lock-sha256"
    with open(SERVER_DIR / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == lock_digest:
            return
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=SERVER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed for the oidc-provider server:\n{result.stderr[-2000:]}")
        stamp.write_text(lock_digest)


@dataclasses.dataclass
class OidcServer:
    """A running server.mjs: its issuer URL and its test-only counters."""

    issuer: str
    access_token_ttl: int
    process: subprocess.Popen[str]
    log: Path

    def stats(self) -> dict[str, int]:
        response = httpx.get(f"{self.issuer}/__test/stats")
        response.raise_for_status()
        return dict(response.json())

    def log_tail(self) -> str:
        return self.log.read_text()[-2000:]


@contextmanager
def run_oidc_server(access_token_ttl: int, log: Path) -> Iterator[OidcServer]:
    """Start server.mjs on a free loopback port; stop it by its PID at the end."""
    node = _node()
    install_server_packages()
    env = {**os.environ, "OIDC_ACCESS_TOKEN_TTL": str(access_token_ttl)}
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [node, "server.mjs"],
            cwd=SERVER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints its issuer once it listens
        if not line:
            process.wait(timeout=10)
            pytest.fail(f"the oidc-provider server did not start:\n{log.read_text()[-2000:]}")
        ready = json.loads(line)
        yield OidcServer(ready["issuer"], ready["accessTokenTtl"], process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def make_client(
    issuer: str, http: httpx.AsyncClient, client_id: str = "client-post", **options: object
) -> OAuthClient:
    """whop_oauth's real OAuthClient for one of server.mjs's clients, found by discovery."""
    secret, method = CLIENTS[client_id]
    return OAuthClient(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,  # type: ignore[arg-type]
        redirect_uri=REDIRECT_URI,
        provider=issuer,
        http_client=http,
        **options,  # type: ignore[arg-type]
    )


async def sign_in(client: OAuthClient) -> Token:
    """A grant through the real code flow: a cookie-keeping 'browser' follows the
    redirects (authorize, interaction, resume) until the provider sends it back to
    the redirect_uri, whose query the client completes."""
    await client.load_metadata()
    flow = client.authorization_request()
    url = httpx.URL(flow.url)
    async with httpx.AsyncClient() as browser:  # a browser: its own cookie jar
        for _ in range(10):
            response = await browser.get(url)
            assert response.status_code in (302, 303), response.text[:500]
            url = url.join(response.headers["location"])
            if str(url).startswith(REDIRECT_URI):
                break
        else:
            pytest.fail("the provider never redirected back to the client")
    return await client.complete_authorization(url.query.decode(), flow)


def fingerprint(value: str) -> str:
    """A short digest standing in for a token in test output (tokens are never printed)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclasses.dataclass
class WorkerResult:
    tokens: dict[str, int]  # fingerprint -> number of callers that received it
    errors: dict[str, int]  # exception type -> count


class StormWorkers(WorkerGroup):
    """OS processes running oidc_storm_worker.py, each ready and waiting for 'go'."""

    def __init__(self, count: int, config: dict[str, object]) -> None:
        env = {**os.environ, "WHOP_STORM_CONFIG": json.dumps(config)}
        super().__init__([sys.executable, str(WORKER)], env, count)

    def results(self) -> list[WorkerResult]:
        return [WorkerResult(**out) for out in self.outputs()]
