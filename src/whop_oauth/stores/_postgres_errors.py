"""How the PostgreSQL store tells a lost connection (worth retrying) from a real failure,
and how it describes either without ever repeating the password."""

from __future__ import annotations

import re

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

__all__ = ["connection_lost", "describe"]

# Connection refusals that waiting does not cure: wrong credentials, database or TLS setup.
_PERMANENT = ("authentication", "password", "pg_hba.conf", "does not exist", "permission", "SSL")
# 08: connection exception; 57P01-03: the server shuts down, crashed or is starting up;
# 53300: too many connections (others will finish).
_TRANSIENT_STATES = ("57P01", "57P02", "57P03", "53300")


def connection_lost(exc: psycopg.Error) -> bool:
    """True when the statement failed because the connection or the server went away
    (a restart, a dropped socket): the store retries it on a fresh connection."""
    if isinstance(exc, PoolTimeout | PoolClosed):
        return False
    state = exc.sqlstate
    if state is not None:
        return state.startswith("08") or state in _TRANSIENT_STATES
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    text = str(exc)
    return not any(marker in text for marker in _PERMANENT)


def describe(exc: psycopg.Error, password: str | None) -> str:
    """One line naming the cause: the server's message, or libpq's first line."""
    text = exc.diag.message_primary if exc.sqlstate else None
    if not text:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else ""
    text = re.sub(r"\s+", " ", text).strip()[:300]
    if password:
        text = text.replace(password, "***")  # libpq never prints it; make sure of it
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
