"""Store scale: 100,000 users per backend, get/put p50/p99, and the process's memory.

    python -m bench.store [--users 100000] [--samples 20000] [--only postgres,redis]

Each backend runs in a fresh child process so its resident memory is its own.
Targets (issue #3): get p50 <= 100 µs for SQLite, <= 300 µs for Redis on loopback;
(issue #13) <= 300 µs for PostgreSQL on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from bench._harness import machine_line, percentile
from bench._store_support import postgres_server, redis_server, rss_mib
from whop_oauth import Token, TokenKey, generate_encryption_key, open_store

ISSUER, CLIENT_ID = "https://api.whop.com", "app_bench"


def key(index: int) -> TokenKey:
    return TokenKey(f"biz_{index % 100}", f"user_{index}", ISSUER, CLIENT_ID)


def token(index: int) -> Token:
    # Realistic sizes: Whop access tokens are JWTs of roughly 700 bytes.
    return Token(
        access_token=f"at{index:08d}" + "x" * 700,
        refresh_token=f"rt{index:08d}" + "y" * 60,
        expires_at=time.time() + 3600,
        scopes=("openid", "profile", "email"),
    )


async def measure(url: str, users: int, samples: int) -> dict[str, float]:
    store = open_store(url, encryption_keys=[generate_encryption_key()])
    started = time.perf_counter()
    batch = 256  # fill concurrently; latencies are measured one at a time below
    for first in range(0, users, batch):
        await asyncio.gather(
            *(store.put(key(i), token(i)) for i in range(first, min(first + batch, users)))
        )
    fill = time.perf_counter() - started
    rng = random.Random(7)
    gets, puts = [], []
    for _ in range(samples):
        k = key(rng.randrange(users))
        begin = time.perf_counter()
        await store.get(k)
        gets.append(time.perf_counter() - begin)
    for _ in range(samples // 4):
        i = rng.randrange(users)
        begin = time.perf_counter()
        await store.put(key(i), token(i))
        puts.append(time.perf_counter() - begin)
    await store.aclose()
    return {
        "fill_s": fill,
        "get_p50": percentile(gets, 50),
        "get_p99": percentile(gets, 99),
        "put_p50": percentile(puts, 50),
        "put_p99": percentile(puts, 99),
        "rss_mib": rss_mib(),
    }


def child(backend: str, url: str, users: int, samples: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.store", "--child", url, "--users", str(users),
         "--samples", str(samples)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--only", help="comma-separated backends (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.child, args.users, args.samples))))
        return
    print(f"Token store scale: {args.users:,} users — {machine_line()}")
    print(f"  {'backend':<8} {'fill':>8} {'get p50':>9} {'get p99':>9} {'put p50':>9} "
          f"{'put p99':>9} {'RSS':>9}")  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        redis_server() as redis_url,
        postgres_server() as postgres_url,
    ):
        urls = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{Path(tmp) / 'tokens.db'}",
            "redis": redis_url,
            "postgres": postgres_url,
        }
        only = set(args.only.split(",")) if args.only else set(urls)
        for backend, url in urls.items():
            if backend not in only:
                continue
            r = child(backend, url, args.users, args.samples)
            print(
                f"  {backend:<8} {r['fill_s']:>7.1f}s {r['get_p50'] * 1e6:>7.0f}µs "
                f"{r['get_p99'] * 1e6:>7.0f}µs {r['put_p50'] * 1e6:>7.0f}µs "
                f"{r['put_p99'] * 1e6:>7.0f}µs {r['rss_mib']:>6.0f}MiB"
            )
        server = redis.Redis.from_url(redis_url)
        used = int(server.info("memory")["used_memory"]) / 2**20  # type: ignore[index]
        server.close()
        on_disk = float("nan")
        if "postgres" in only:
            with psycopg.connect(postgres_url) as conn:
                row = conn.execute(
                    "SELECT pg_total_relation_size('whop_oauth.grants') / 1048576.0"
                ).fetchone()
            on_disk = float(row[0]) if row else on_disk
        print(f"  (RSS: the benchmark process; redis-server holds the {args.users:,} grants "
              f"in {used:.0f} MiB, PostgreSQL in {on_disk:.0f} MiB of table and indexes; "
              "PostgreSQL runs with fsync on and synchronous_commit off)")  # fmt: skip


if __name__ == "__main__":
    main()
