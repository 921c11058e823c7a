"""The SQLite file: created owner-only without a descriptor outside SQLite, opened by many
processes at once, and never used across a fork."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from whop_oauth import Token, TokenKey, TokenStoreError
from whop_oauth.stores import SQLiteTokenStore, TokenCipher, generate_encryption_key

KEY = TokenKey("biz_1", "user_1", "https://issuer.test", "app_1")
WORKER = Path(__file__).with_name("open_race_worker.py")


def new_store(path: Path) -> SQLiteTokenStore:
    return SQLiteTokenStore(path, cipher=TokenCipher([generate_encryption_key()]))


async def test_no_descriptor_of_the_database_is_opened_outside_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing any descriptor of the file would drop this process's SQLite locks on it.
    path = tmp_path / "tokens.db"
    opened: list[str] = []
    real_open = os.open

    def spy(file: str | os.PathLike[str], *args: object, **kwargs: object) -> int:
        opened.append(os.path.abspath(os.fspath(file)))
        return real_open(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    for _ in range(2):  # a new file, then an existing one
        store = new_store(path)
        await store.put(KEY, Token("at_1"))
        await store.aclose()
    database = {str(path), f"{path}-wal", f"{path}-shm"}
    assert database.isdisjoint(opened)


async def test_a_new_store_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    store = new_store(path)
    await store.put(KEY, Token("at_1"))
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        assert stat.S_IMODE(os.stat(name).st_mode) & 0o077 == 0, name
    await store.aclose()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


async def test_an_existing_file_readable_by_others_is_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    store = new_store(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await store.aclose()


def _use_after_fork(store: SQLiteTokenStore, answer: Connection) -> None:
    try:
        asyncio.run(store.get(KEY))
        answer.send("worked")
    except TokenStoreError as error:
        answer.send(str(error))


async def test_a_store_carried_across_fork_refuses_to_work(tmp_path: Path) -> None:
    # SQLite's "How To Corrupt", §2.6: a connection must not be used in a forked child.
    store = new_store(tmp_path / "tokens.db")
    await store.put(KEY, Token("at_1"))
    mine, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_use_after_fork, args=(store, theirs)
    )
    child.start()
    child.join(10)
    assert "open the store in each worker process" in mine.recv()
    assert (await store.get(KEY)) is not None  # the parent's store still works
    await store.aclose()


@pytest.mark.slow
def test_eight_processes_opening_a_new_file_at_once_all_open_with_one_schema(
    tmp_path: Path,
) -> None:
    alone = tmp_path / "alone.db"
    asyncio.run(new_store(alone).aclose())
    with sqlite3.connect(alone) as check:
        reference = check.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
    env = {**os.environ, "WHOP_TEST_KEYS": generate_encryption_key()}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), f"user_{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(8)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for round_ in range(20):
            path = tmp_path / f"round-{round_}.db"
            for worker in workers:  # the same brand-new path to all, as fast as pipes go
                assert worker.stdin is not None
                worker.stdin.write(f"{path}\n")
                worker.stdin.flush()
            answers = [worker.stdout.readline().strip() for worker in workers if worker.stdout]
            assert answers == ["ok"] * 8, (round_, answers)
            with sqlite3.connect(path) as check:
                tables = check.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                ).fetchall()
                rows = check.execute("SELECT count(*) FROM whop_oauth_grants").fetchone()
            assert tables == reference  # one schema, as one process alone makes it
            assert rows == (8,)
    finally:
        for worker in workers:
            worker.communicate(timeout=10)  # closes stdin (the worker exits) and stdout


async def test_a_closed_store_answers_every_call_with_a_typed_error(tmp_path: Path) -> None:
    store = new_store(tmp_path / "tokens.db")
    await store.put(KEY, Token("at_1"))
    await store.aclose()
    await store.aclose()  # twice is harmless
    for call in (store.get(KEY), store.put(KEY, Token("at_2")), store.delete(KEY), store.ping()):
        with pytest.raises(TokenStoreError):
            await call
