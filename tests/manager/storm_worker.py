"""One worker process of the cross-process tests: N concurrent callers ask for one token.

    python tests/manager/storm_worker.py STORE_URL ISSUER CALLERS [LEASE]

Encryption keys come in ``WHOP_TEST_KEYS`` (comma-separated). The worker prints
``ready`` once set up, waits for a line on stdin (the start signal, so that every
process starts together), runs the callers, and prints one JSON line: the access
tokens it received (by count), the errors by type, and how long callers waited.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import httpx

from whop_oauth import OAuthClient, TokenManager, open_store, whop_metadata

USER = "user_mock1"


async def main(store_url: str, issuer: str, callers: int, lease: float) -> None:
    store = open_store(store_url, encryption_keys=os.environ["WHOP_TEST_KEYS"].split(","))
    async with httpx.AsyncClient() as http:
        client = OAuthClient(
            client_id="app_mock",
            redirect_uri="http://127.0.0.1/callback",
            provider=whop_metadata(issuer),
            http_client=http,
            max_retries=0,
            # The lease must outlast a refresh request's whole deadline.
            timeout=lease * 0.3,
            deadline=lease * 0.6,
        )
        manager = TokenManager(client, store, lock_lease=lease, lock_timeout=lease * 5)
        # Warm the store's connections, as a running app's would be.
        warm = manager.key(user="warm-up")
        await asyncio.gather(*(store.get(warm) for _ in range(callers)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        tokens: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        waits: list[float] = []

        async def call() -> None:
            started = time.perf_counter()
            try:
                tokens[await manager.access_token(user=USER)] += 1
            except Exception as error:
                errors[type(error).__name__] += 1
            waits.append(time.perf_counter() - started)

        await asyncio.gather(*(call() for _ in range(callers)))
    await store.aclose()
    print(json.dumps({"tokens": tokens, "errors": errors, "waits": waits}), flush=True)


if __name__ == "__main__":
    url, issuer, callers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(main(url, issuer, callers, float(sys.argv[4]) if len(sys.argv) > 4 else 30.0))
