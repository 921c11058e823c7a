"""Creating the SQLite token file and its schema, safely for processes that start at once.

One rule from SQLite's "How To Corrupt An SQLite Database File" (§2.2) shapes this
module: POSIX locks belong to a process and a file, so closing *any* descriptor of
the database drops every lock the process's SQLite connections hold on it. The
database file is therefore never opened here: a new one is made under a temporary
name, owner-only, and linked into place; an existing one is only ``chmod``-ed,
which opens nothing.
"""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import stat
import time

__all__ = ["SCHEMA_VERSION", "create_owner_only", "open_schema"]

#: 1: whop_oauth 0.1 (lock rows without generations); 2: fenced leases, versioned AAD;
#: 3: server-side session records and spent sign-in flows (new tables only).
SCHEMA_VERSION = 3

_TABLES = (
    """CREATE TABLE IF NOT EXISTS whop_oauth_schema (
        id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS whop_oauth_grants (
        tenant TEXT NOT NULL, user TEXT NOT NULL, issuer TEXT NOT NULL, client_id TEXT NOT NULL,
        version INTEGER NOT NULL, expires_at REAL, updated_at REAL NOT NULL,
        purge_at REAL NOT NULL, blob BLOB NOT NULL,
        PRIMARY KEY (tenant, user, issuer, client_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS whop_oauth_grants_purge ON whop_oauth_grants (purge_at)",
    """CREATE TABLE IF NOT EXISTS whop_oauth_leases (
        tenant TEXT NOT NULL, user TEXT NOT NULL, issuer TEXT NOT NULL, client_id TEXT NOT NULL,
        holder TEXT NOT NULL, expires_at REAL NOT NULL, generation INTEGER NOT NULL,
        PRIMARY KEY (tenant, user, issuer, client_id)
    ) WITHOUT ROWID""",
    # 0.1's lock table had no generations: its rows cannot fence anything.
    "DROP TABLE IF EXISTS whop_oauth_locks",
    # 3: sessions by the SHA-256 of their id (never the id), and spent flows by that of state.
    """CREATE TABLE IF NOT EXISTS whop_oauth_sessions (
        id_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL,
        issuer TEXT NOT NULL, client_id TEXT NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS whop_oauth_sessions_key
        ON whop_oauth_sessions (tenant, user, issuer, client_id)""",
    "CREATE INDEX IF NOT EXISTS whop_oauth_sessions_expiry ON whop_oauth_sessions (expires_at)",
    """CREATE TABLE IF NOT EXISTS whop_oauth_flows (
        state_hash TEXT PRIMARY KEY, expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS whop_oauth_flows_expiry ON whop_oauth_flows (expires_at)",
)


def create_owner_only(path: str) -> None:
    """Make sure ``path`` exists and only its owner may read it, without opening it."""
    if os.path.exists(path):
        for name in (path, path + "-wal", path + "-shm"):
            _tighten(name)
        return
    directory, base = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.new")
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        os.link(temporary, path)  # atomic: when several processes race, one link wins
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def _tighten(name: str) -> None:
    try:
        info = os.stat(name)
    except FileNotFoundError:
        return
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        os.chmod(name, stat.S_IMODE(info.st_mode) & 0o700)


def open_schema(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL and create the tables; retried while other processes do the same.

    Changing the journal mode takes an exclusive lock for which SQLite does not
    always wait, so many workers opening a new file at once see "database is
    locked": that answer is retried (with jitter) until ``busy_timeout``.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.002
    while True:
        try:
            _setup(conn)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        else:
            return
        time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
        pause = min(pause * 2, 0.1)


def _check_version(row: tuple[int] | None) -> None:
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"the token file has schema version {row[0]}, newer than this whop_oauth "
            f"reads ({SCHEMA_VERSION})"
        )


def _setup(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # another connection held the file: not switched yet
            raise sqlite3.OperationalError("database is locked (journal mode not switched)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _TABLES:
            conn.execute(statement)
        row = conn.execute("SELECT version FROM whop_oauth_schema WHERE id = 1").fetchone()
        _check_version(row)
        if row is None or int(row[0]) < SCHEMA_VERSION:
            conn.execute(
                "INSERT OR REPLACE INTO whop_oauth_schema (id, version) VALUES (1, ?)",
                (SCHEMA_VERSION,),
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
