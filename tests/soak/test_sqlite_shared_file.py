"""Issue 8, item 1, with real processes: a process that opens the shared SQLite file and
closes it again must not make another process's later writes invisible.

Before the fix, opening the store did ``os.close(os.open(path))``: closing any
descriptor of the database drops every POSIX lock the process holds on it, so the
holder's own connections lost their locks; a peeking process that closed the file
then believed it was the last user, checkpointed and deleted the WAL under the
holder's live connection, and the holder's next write went to a WAL nobody else reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from whop_oauth import generate_encryption_key

ACTOR = str(Path(__file__).with_name("sqlite_actor.py"))


class Holder:
    """Process A: keeps the store open and writes on command."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, ACTOR, str(path), "hold"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._answer() == "ready"

    def _answer(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.communicate("quit\n", timeout=30)
        assert self.process.returncode == 0


@pytest.fixture
def env() -> dict[str, str]:
    return {**os.environ, "WHOP_TEST_KEYS": generate_encryption_key()}


@pytest.fixture
def holder(tmp_path: Path, env: dict[str, str]) -> Iterator[Holder]:
    holder = Holder(tmp_path / "tokens.db", env)
    try:
        yield holder
    finally:
        if holder.process.poll() is None:
            holder.process.kill()
            holder.process.wait()
        for stream in (holder.process.stdin, holder.process.stdout):
            if stream is not None:
                stream.close()


def peek(path: Path, env: dict[str, str]) -> str:
    """Processes B and C: open the store, read, close it, exit."""
    done = subprocess.run(
        [sys.executable, ACTOR, str(path), "peek"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.slow
def test_a_write_after_another_process_opened_and_closed_the_file_is_seen_by_the_next(
    tmp_path: Path, env: dict[str, str], holder: Holder
) -> None:
    path = tmp_path / "tokens.db"
    assert holder.ask("put one") == "ok"
    assert peek(path, env) == "one"  # B opens the file, reads, closes it, exits

    assert holder.ask("put two") == "ok"

    assert holder.ask("get") == "two"
    assert peek(path, env) == "two"  # C, a fresh process, sees A's second write
    holder.close()
    assert peek(path, env) == "two"  # and so does anyone once A has gone
