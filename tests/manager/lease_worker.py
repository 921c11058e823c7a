"""One worker process of the stalled-holder tests: asks once for a user's token.

    python tests/manager/lease_worker.py STORE_URL ISSUER LEASE MODE

MODE ``stall`` holds the refresh lock, reads the grant, prints ``holding`` and
pauses there (the test freezes it with SIGSTOP at that moment); MODE ``plain``
just asks. Either prints one JSON line: a fingerprint of the access token it got,
or the type of the error. Encryption keys come in ``WHOP_TEST_KEYS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from typing import Any

import httpx

from whop_oauth import OAuthClient, Token, TokenKey, TokenManager, open_store, whop_metadata
from whop_oauth.stores import StoredToken, TokenStore

USER = "user_mock1"


class PausingStore:
    """Passes everything on; the second read (the one under the lock) pauses after it."""

    def __init__(self, inner: TokenStore) -> None:
        self.inner = inner
        self.reads = 0

    async def get(self, key: TokenKey) -> StoredToken | None:
        stored = await self.inner.get(key)
        self.reads += 1
        if self.reads == 2:
            print("holding", flush=True)
            await asyncio.sleep(1.0)  # frozen here by the test; resumes past its lease
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def fingerprint(token: Token) -> str:
    return hashlib.sha256(token.access_token.encode()).hexdigest()[:16]


async def main(store_url: str, issuer: str, lease: float, mode: str) -> None:
    store = open_store(store_url, encryption_keys=os.environ["WHOP_TEST_KEYS"].split(","))
    wrapped: Any = PausingStore(store) if mode == "stall" else store
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
        manager = TokenManager(client, wrapped, lock_lease=lease, lock_timeout=lease * 10)
        try:
            result = {"token": fingerprint(await manager.get_token(user=USER))}
        except Exception as error:
            result = {"error": type(error).__name__}
    await store.aclose()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
