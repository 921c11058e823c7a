"""Memory: RSS of an app process after N distinct signed-in users made one request each.

    python -m bench.rss [--users 100000] [--backends memory,sqlite,redis,postgres]

Per backend, one fresh process serves the ``helper`` app of ``bench/_middleware_app.py``
(middleware, server-side session check, ``user_http_client``) over raw ASGI calls; each
user has a grant and a live session in the store, and sends one request with their own
cookie. The store is seeded by the parent beforehand (``memory://`` lives in the child,
so the child seeds it: its "before" includes the stored grants). RSS is read before the
first request and after 10%, 50% and 100% of the users: the per-user caches (the token
cache, the session memory, the verified-cookie cache, the Cookie headers' verified
sessions, the users built from sessions, ``manager.auth()``'s objects, the sessions'
``UserHTTPClient``s) are bounded, so the growth levels off instead of following the
number of users.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import _middleware_app as apps
from ._harness import machine_line
from ._store_support import postgres_server, redis_server, rss_mib

BACKENDS = ("memory", "sqlite", "redis", "postgres")
#: Requests in flight at once in the measured process.
CONCURRENCY = 32


async def child(store_url: str, users: int) -> dict[str, float]:
    """Runs in the measured process: one request per user, RSS at checkpoints."""
    manager = apps.manager_for(store_url)
    if store_url.startswith("memory:"):
        await apps.seed(manager, range(users))
    driver = apps.Driver(apps.build("helper", manager))
    await driver.get(apps.cookie(0))  # imports done, pools open, code paths warm
    gc.collect()
    rss = {"before": rss_mib()}
    checkpoints = [(users // 10, "10%"), (users // 2, "50%"), (users, "100%")]

    async def serve(index: int) -> None:
        if await driver.get(apps.cookie(index)) != 200:
            raise RuntimeError(f"user {index} was not served")

    done = 0
    while checkpoints:
        upto, name = checkpoints.pop(0)
        while done < upto:  # CONCURRENCY users at a time, as a busy server would have
            batch = range(done, min(done + CONCURRENCY, upto))
            await asyncio.gather(*(serve(index) for index in batch))
            done = batch.stop
        gc.collect()
        rss[name] = rss_mib()
    await manager.store.aclose()
    return rss


async def seed(store_url: str, users: int) -> None:
    manager = apps.manager_for(store_url)
    try:
        concurrency = 1 if store_url.startswith("sqlite:") else 32
        await apps.seed(manager, range(users), concurrency=concurrency)
    finally:
        await manager.store.aclose()


@contextmanager
def store_for(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp / 'rss.db'}"
    elif backend == "redis":
        with redis_server() as url:
            yield url
    else:
        with postgres_server() as url:
            yield url


def measure(backend: str, users: int, tmp: Path) -> dict[str, float]:
    with store_for(backend, tmp) as url:
        if backend != "memory":
            asyncio.run(seed(url, users))
        out = subprocess.run(
            [sys.executable, "-m", "bench.rss", "--child", url, "--users", str(users)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main(users: int, backends: list[str]) -> None:
    print(f"RSS of one app process, {users} distinct signed-in users, one request each")
    print(f"  ({machine_line()}; MiB; 'before' = app ready, store seeded, no user served)")
    print(f"  {'backend':<10} {'before':>8} {'10%':>8} {'50%':>8} {'100%':>8} {'growth':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            rss = measure(backend, users, Path(tmp))
            growth = rss["100%"] - rss["before"]
            print(
                f"  {backend:<10} {rss['before']:>8.1f} {rss['10%']:>8.1f} {rss['50%']:>8.1f} "
                f"{rss['100%']:>8.1f} {growth:>+8.1f}",
                flush=True,
            )
    print(
        "  caches: token cache 10,000 entries, session memory 10,000, verified cookies 4,096,"
        " users (WhopUser, by session id) 4,096, Cookie headers' verified sessions 4,096"
        " (of at most 1 KiB), manager.auth() objects 4,096, user_http_client's clients"
        " (by session id) 4,096, user_http_client's parsed API URLs 256 paths per site;"
        " each drops its oldest entry when full"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.users))))
    else:
        main(args.users, args.backends.split(","))
