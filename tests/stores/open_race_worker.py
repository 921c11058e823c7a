"""A worker of the open-race test: for each path read from stdin, open a SQLite store
there at once, write and read one grant, close it, and print ``ok`` or the error type.

    python tests/stores/open_race_worker.py NAME      (keys in WHOP_TEST_KEYS)
"""

from __future__ import annotations

import asyncio
import os
import sys

from whop_oauth import Token, TokenKey
from whop_oauth.stores import open_store


async def round_trip(path: str, name: str) -> str:
    try:
        keys = os.environ["WHOP_TEST_KEYS"].split(",")
        store = open_store(f"sqlite:///{path}", encryption_keys=keys)
        key = TokenKey("biz_1", name, "https://issuer.test", "app_1")
        await store.put(key, Token(f"at_{name}"))
        stored = await store.get(key)
        await store.aclose()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "ok" if stored is not None and stored.token.access_token == f"at_{name}" else "lost"


def main(name: str) -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        print(asyncio.run(round_trip(line.strip(), name)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
