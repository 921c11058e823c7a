"""Sessions across real worker processes on one store: a sign-out made by a job that
starts and exits ends the session in every worker within the window, a worker frozen
past the window does not serve its stale memory once thawed, a worker killed and
replaced starts from the store, a session that lives seconds expires everywhere, and
a cookie naming someone else than its record is refused in every process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from redis_server import free_port
from session_app import SIGNING_KEY, WINDOW, manager

from whop_oauth import generate_encryption_key
from whop_oauth.starlette import SessionData
from whop_oauth.starlette._cookies import CookieCodec

HERE = Path(__file__).parent
CODEC = CookieCodec([SIGNING_KEY])
SHORT_LIVED = 4.0  # seconds a session of the short-lived user lasts
SESSIONS = {
    "one": SessionData("session-one-" + "a" * 20, "user_a", "biz_1", int(time.time())),
    "two": SessionData("session-two-" + "b" * 20, "user_b", "biz_1", int(time.time())),
    "brief": SessionData("session-brief-" + "c" * 18, "user_c", "biz_2", int(time.time())),
}


def cookie(session: SessionData) -> dict[str, str]:
    return {"Cookie": f"whop_session={CODEC.dumps_session(session)}"}


def who(base: str, session: SessionData) -> str | None:
    """The user ``base`` says is signed in with ``session``'s cookie, or ``None``."""
    answer = httpx.get(f"{base}/", headers=cookie(session), timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if not body["signed_in"]:
        assert "Max-Age=0" in answer.headers["set-cookie"]  # the dead cookie is dropped
        return None
    return str(body["user"])


def eventually_out(base: str, session: SessionData, *, within: float) -> float:
    """Seconds until ``base`` reads ``session`` as signed out; fails after ``within``."""
    began = time.monotonic()
    while who(base, session) is not None:
        assert time.monotonic() - began < within, f"{base} still serves an ended session"
        time.sleep(0.05)
    return time.monotonic() - began


async def seed(store_url: str, encryption_key: str) -> None:
    """The three sessions, stored as the app's sign-in stores them (no grants needed)."""
    tokens = manager(store_url, encryption_key)
    try:
        for name, session in SESSIONS.items():
            key = tokens.key(user=session.user, tenant=session.tenant)
            lifetime = SHORT_LIVED if name == "brief" else 3600
            await tokens.sessions.create(session.session_id, key, lifetime=lifetime)
    finally:
        await tokens.store.aclose()


@contextmanager
def worker(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A one-process uvicorn serving the app; yields its base URL and process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "session_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=HERE, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the worker exited"
                time.sleep(0.05)
        yield base, process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # in case the test left it frozen
            process.terminate()
            process.wait(timeout=10)


def sign_out_job(env: dict[str, str], session: SessionData) -> None:
    """A process that starts, signs one session out, and exits."""
    done = subprocess.run(
        [sys.executable, "session_app.py", "end", session.session_id],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ended"


@pytest.mark.slow
def test_sign_out_reaches_every_worker_frozen_killed_or_new(store_url: str) -> None:
    encryption_key = generate_encryption_key()
    seeded = time.time()
    asyncio.run(seed(store_url, encryption_key))
    env = {
        **os.environ,
        "WHOP_TEST_STORE": store_url,
        "WHOP_TEST_ENCRYPTION_KEY": encryption_key,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    one, two, brief = SESSIONS["one"], SESSIONS["two"], SESSIONS["brief"]
    with ExitStack() as stack:
        (a, _), (b, frozen) = (stack.enter_context(worker(env)) for _ in range(2))
        for base in (a, b):  # both remember all three sessions now
            assert [who(base, s) for s in (one, two, brief)] == ["user_a", "user_b", "user_c"]

        os.kill(frozen.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        sign_out_job(env, one)
        eventually_out(a, one, within=WINDOW + 2)
        assert who(a, two) == "user_b"

        time.sleep(max(0.0, WINDOW + 0.5 - (time.monotonic() - stopped)))
        os.kill(frozen.pid, signal.SIGCONT)
        # Its memory of the session is older than the window: the first answer is the store's.
        assert who(b, one) is None
        assert who(b, two) == "user_b"

        # A session that lives seconds ends in every worker when it expires.
        time.sleep(max(0.0, seeded + SHORT_LIVED + 0.2 - time.time()))
        assert who(a, brief) is None
        assert who(b, brief) is None

        # A worker killed and replaced: the new process starts from the store.
        killed = stack.enter_context(worker(env))
        os.kill(killed[1].pid, signal.SIGKILL)
        killed[1].wait(timeout=10)
        c, _ = stack.enter_context(worker(env))
        assert who(c, one) is None
        assert who(c, two) == "user_b"
        # A cookie with a live session's id but naming another user, in every process.
        impostor = SessionData(two.session_id, "user_a", two.tenant, two.login_at)
        assert [who(base, impostor) for base in (a, b, c)] == [None, None, None]

        sign_out_job(env, two)
        for base in (a, b, c):
            eventually_out(base, two, within=WINDOW + 2)
