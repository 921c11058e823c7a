"""One process of the shared-SQLite-file test: it holds the store open, or peeks once.

    python tests/soak/sqlite_actor.py PATH hold   # stdin: "put LABEL", "get", "quit"
    python tests/soak/sqlite_actor.py PATH peek   # open, print the stored label, close, exit

Encryption keys come in ``WHOP_TEST_KEYS`` (comma-separated). The label travels in the
token's scopes, so nothing token-like is ever printed; a missing grant prints ``-``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from whop_oauth import Token, TokenKey, open_store
from whop_oauth.stores import TokenStore

KEY = TokenKey("biz_soak", "user_soak", "https://mock-whop.test", "app_mock")


def _open(path: str) -> TokenStore:
    return open_store(f"sqlite:///{path}", encryption_keys=os.environ["WHOP_TEST_KEYS"].split(","))


async def _label(store: TokenStore) -> str:
    stored = await store.get(KEY)
    return "-" if stored is None else stored.token.scopes[0]


async def hold(path: str) -> None:
    store = _open(path)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while command := (await loop.run_in_executor(None, sys.stdin.readline)).split():
        if command[0] == "put":
            token = Token("not-a-real-token", scopes=(command[1],))
            await store.put(KEY, token)
            print("ok", flush=True)
        elif command[0] == "get":
            print(await _label(store), flush=True)
        else:
            break
    await store.aclose()


async def peek(path: str) -> None:
    store = _open(path)
    label = await _label(store)
    await store.aclose()
    print(label, flush=True)


if __name__ == "__main__":
    asyncio.run(hold(sys.argv[1]) if sys.argv[2] == "hold" else peek(sys.argv[1]))
