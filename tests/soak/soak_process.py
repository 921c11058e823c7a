"""A process of the deployment soak: a long-lived worker, or the launcher of cron-like jobs.

    python tests/soak/soak_process.py worker NAME CONFIG   # until SIGTERM
    python tests/soak/soak_process.py jobs NAME CONFIG     # forks jobs until SIGTERM

``CONFIG`` is a JSON file written by the test (store URL, issuer, grants, log folder,
timings); encryption keys come in ``WHOP_TEST_KEYS``. A worker runs ``tasks``
concurrent loops, each acting for a random (tenant, user): a token from its
``TokenManager``, then one call to the mock's bearer API. A job does that once in a
fresh process and exits. The launcher forks jobs from an interpreter that has
imported the library but opened nothing (no store, no thread, no event loop), so a
job costs milliseconds of CPU instead of an interpreter start-up, as a pre-forking
job runner would; every job still opens the store itself and closes it on exit.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from soak_probes import (
    EventLog,
    ProbedStore,
    ProbedTransport,
    acting_for,
    fp,
    key_name,
    life_left,
)

from whop_oauth import OAuthClient, TokenManager, open_store, whop_metadata


def _oauth_client(config: dict[str, Any], http: httpx.AsyncClient) -> OAuthClient:
    options: dict[str, Any] = {"timeout": config["timeout"]}
    # The per-call deadline arrived with lease fencing; older versions have none.
    if "deadline" in inspect.signature(OAuthClient).parameters:
        options["deadline"] = config["deadline"]
    return OAuthClient(
        client_id="app_mock",
        redirect_uri="http://127.0.0.1/callback",
        provider=whop_metadata(config["issuer"]),
        http_client=http,
        **options,
    )


class Actor:
    """A store, a manager and HTTP clients, as one process of an app would hold them."""

    def __init__(self, config: dict[str, Any], log: EventLog) -> None:
        self.log = log
        self.issuer = config["issuer"]
        keys = os.environ["WHOP_TEST_KEYS"].split(",")
        self.store = ProbedStore(open_store(config["store"], encryption_keys=keys), log)
        transport = ProbedTransport(httpx.AsyncHTTPTransport(), log)
        self.oauth_http = httpx.AsyncClient(transport=transport)
        self.api = httpx.AsyncClient(timeout=config["api_timeout"])
        self.manager = TokenManager(
            _oauth_client(config, self.oauth_http),
            self.store,
            lock_lease=config["lease"],
            lock_timeout=config["lock_timeout"],
        )

    async def __aenter__(self) -> Actor:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.api.aclose()
        await self.oauth_http.aclose()
        await self.store.aclose()

    async def act(self, tenant: str, user: str) -> None:
        """A token for (tenant, user) from the manager, then one API call with it."""
        name = key_name(tenant, user)
        acting_for.set(name)  # a refresh task started from here inherits it
        started = time.monotonic()
        try:
            token = await self.manager.get_token(user=user, tenant=tenant)
        except Exception as error:
            self.log.write("token_failed", k=name, t0=started, error=type(error).__name__)
            return
        life = life_left(token)
        self.log.write("token", k=name, t0=started, at=fp(token.access_token), **life)
        handed_out = time.monotonic()
        headers = {"Authorization": f"Bearer {token.access_token}"}
        try:
            response = await self.api.get(f"{self.issuer}/api/v1/accounts/me", headers=headers)
        except httpx.HTTPError as error:
            result = type(error).__name__
        else:
            result = _result(response, user)
        at = fp(token.access_token)
        self.log.write("api", k=name, t0=started, t1=handed_out, result=result, at=at, **life)


def _result(response: httpx.Response, user: str) -> str:
    """``ok``, ``wrong_user``, or the status with the mock's reason (expired, revoked...)."""
    if response.status_code == 200:
        return "ok" if response.json().get("id") == user else "wrong_user"
    challenge = response.headers.get("WWW-Authenticate", "")
    reason = challenge.rsplit(" ", 1)[-1].strip('"') if "error_description" in challenge else ""
    return f"http_{response.status_code}" + (f":{reason}" if reason else "")


async def worker(name: str, config: dict[str, Any]) -> None:
    log = EventLog(Path(config["logs"]) / f"{name}.jsonl", name)
    log.write("start", pid=os.getpid())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # A worker that does not stop when told is asked where its tasks are stuck.
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _print_tasks)
    grants = [tuple(grant) for grant in config["grants"]]

    async def loop(rng: random.Random) -> None:
        while not stop.is_set():
            await actor.act(*rng.choice(grants))
            await asyncio.sleep(rng.uniform(*config["pause"]))

    async with Actor(config, log) as actor:
        log.write("ready")
        seeds = [f"{config['seed']}-{name}-{task}" for task in range(config["tasks"])]
        await asyncio.gather(*(loop(random.Random(seed)) for seed in seeds))
    log.write("exit")
    log.close()


def _print_tasks() -> None:
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


async def job(name: str, config: dict[str, Any]) -> None:
    log = EventLog(Path(config["logs"]) / "jobs" / f"{name}.jsonl", name)
    log.write("start", pid=os.getpid())
    async with Actor(config, log) as actor:
        grants = config["grants"]
        await actor.act(*random.Random(f"{config['seed']}-{name}").choice(grants))
    log.write("exit")
    log.close()


def launcher(name: str, config: dict[str, Any]) -> None:
    """Forks a job every ``job_interval`` seconds (at most ``max_jobs`` alive) until SIGTERM."""
    log = EventLog(Path(config["logs"]) / f"{name}.jsonl", name)
    log.write("start", pid=os.getpid())
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    log.write("ready")
    children: dict[int, str] = {}
    launched = 0
    next_at = time.monotonic()
    while not stopping or children:
        _reap(children, log, block=False)
        if not stopping and time.monotonic() >= next_at:
            next_at += config["job_interval"]
            if len(children) >= config["max_jobs"]:
                log.write("job_skipped")
                continue
            launched += 1
            job_name = f"job{launched:04d}"
            pid = os.fork()
            if pid == 0:
                _run_job(job_name, config)
            children[pid] = job_name
            log.write("job_started", job=job_name, pid=pid)
        time.sleep(0.005)
    log.write("exit")
    log.close()


def _run_job(job_name: str, config: dict[str, Any]) -> None:
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        asyncio.run(job(job_name, config))
    except BaseException:
        traceback.print_exc()
        code = 3
    finally:
        sys.stderr.flush()
        os._exit(code)


def _reap(children: dict[int, str], log: EventLog, *, block: bool) -> None:
    while children:
        pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        if pid == 0:
            return
        job_name = children.pop(pid)
        log.write("job_exited", job=job_name, code=os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    mode, process_name, config_path = sys.argv[1:4]
    settings = json.loads(Path(config_path).read_text())
    if mode == "worker":
        asyncio.run(worker(process_name, settings))
    else:
        launcher(process_name, settings)
