"""One worker process of the cross-process storm against oidc-provider.

    WHOP_STORM_CONFIG='{"store_url": ..., "issuer": ..., ...}' python oidc_storm_worker.py

The JSON comes in the environment (argv is readable by any local user) and holds
store_url, keys (encryption keys), issuer, client_id, client_secret, user, tenant
and callers. The worker discovers the provider and warms its store
connections, prints ``ready``, waits for a line on stdin (the start signal, so that
every process starts together), lets ``callers`` concurrent callers ask the
TokenManager for the user's access token, and prints one JSON line: the tokens
received (as fingerprints, never the values) and the errors by type.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections import Counter
from typing import Any

import httpx

from whop_oauth import OAuthClient, TokenManager, open_store


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


async def main(config: dict[str, Any]) -> None:
    store = open_store(config["store_url"], encryption_keys=config["keys"])
    async with httpx.AsyncClient() as http:
        client = OAuthClient(
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            redirect_uri="http://127.0.0.1/callback",
            provider=config["issuer"],
            http_client=http,
            max_retries=0,
        )
        manager = TokenManager(client, store)
        user, tenant, callers = config["user"], config["tenant"], config["callers"]
        # A running app has its metadata and store connections already.
        await client.load_metadata()
        warm = manager.key(user="warm-up", tenant=tenant)
        await asyncio.gather(*(store.get(warm) for _ in range(callers)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        tokens: Counter[str] = Counter()
        errors: Counter[str] = Counter()

        async def call() -> None:
            try:
                tokens[fingerprint(await manager.access_token(user=user, tenant=tenant))] += 1
            except Exception as error:
                errors[type(error).__name__] += 1

        await asyncio.gather(*(call() for _ in range(callers)))
    await store.aclose()
    print(json.dumps({"tokens": tokens, "errors": errors}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(os.environ["WHOP_STORM_CONFIG"])))
