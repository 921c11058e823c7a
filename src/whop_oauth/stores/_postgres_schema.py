"""The PostgreSQL token store's tables: names, statements, and creating them safely.

Everything lives in one schema of its own (``whop_oauth`` unless configured), so the
store's tables never meet an application's. Many workers may open a new database
at the same moment: concurrent ``CREATE TABLE IF NOT EXISTS`` can still collide in
PostgreSQL's catalogs, so creation runs under a transaction-level advisory lock
named after the schema, and a version table leaves room for later migrations.
"""

from __future__ import annotations

import hashlib
import re

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from .._errors import ConfigurationError, InvalidTokenKey, TokenStoreError
from .._token import TokenKey

__all__ = [
    "SCHEMA_VERSION",
    "Statements",
    "check_schema_name",
    "create_schema",
    "key_parts",
    "render",
]

#: 1: grants with versioned ciphertexts, leases with generations;
#: 2: server-side session records and spent sign-in flows (new tables only).
SCHEMA_VERSION = 2

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Fragments the statements below share, as {name} in their templates.
_FRAGMENTS = {
    # Key columns compare bytewise ("C"): no locale can make two ids equal or slow the index.
    "key_columns": """tenant text COLLATE "C" NOT NULL, user_id text COLLATE "C" NOT NULL,
        issuer text COLLATE "C" NOT NULL, client_id text COLLATE "C" NOT NULL""",
    "key": "tenant = %s AND user_id = %s AND issuer = %s AND client_id = %s",
    "unfenced": "NOT EXISTS (SELECT 1 FROM fence WHERE generation > %s::bigint)",
    "verdict": "SELECT (SELECT count(*) FROM written), (SELECT max(generation) FROM fence)",
    "now_us": "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
}
# The lease row is read FOR SHARE: an acquisition waits for the write to commit (and
# so reads it), or the write sees the newer generation.
_FENCE = "fence AS (SELECT generation FROM {s}.leases WHERE {key} FOR SHARE)"

_TABLES = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.schema_version (
        id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {s}.grants (
        {key_columns}, version bigint NOT NULL, expires_at double precision,
        updated_at double precision NOT NULL, purge_at double precision NOT NULL,
        blob bytea NOT NULL, PRIMARY KEY (tenant, user_id, issuer, client_id))""",
    "CREATE INDEX IF NOT EXISTS grants_purge_at ON {s}.grants (purge_at)",
    # Lease times are the server's clock: every worker, on every machine, reads one clock.
    """CREATE TABLE IF NOT EXISTS {s}.leases (
        {key_columns}, holder text NOT NULL, expires_at timestamptz NOT NULL,
        generation bigint NOT NULL, PRIMARY KEY (tenant, user_id, issuer, client_id))""",
    # 2: sessions by the SHA-256 of their id (never the id), spent flows by that of state.
    """CREATE TABLE IF NOT EXISTS {s}.sessions (
        id_hash text COLLATE "C" PRIMARY KEY, {key_columns},
        created_at double precision NOT NULL, expires_at double precision NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sessions_key ON {s}.sessions (tenant, user_id, issuer, client_id)",
    "CREATE INDEX IF NOT EXISTS sessions_expires_at ON {s}.sessions (expires_at)",
    """CREATE TABLE IF NOT EXISTS {s}.flows (
        state_hash text COLLATE "C" PRIMARY KEY, expires_at double precision NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS flows_expires_at ON {s}.flows (expires_at)",
)


def check_schema_name(name: object) -> str:
    """A schema name used as is in SQL: lowercase letters, digits and ``_`` only."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            "the PostgreSQL schema must be 1-63 lowercase letters, digits or '_', "
            "not starting with a digit (e.g. schema='whop_oauth')"
        )
    if name == "public" or name.startswith("pg_") or name == "information_schema":
        raise ConfigurationError(
            f"the PostgreSQL schema {name!r} is shared: give the token store a schema of its own"
        )
    return name


def key_parts(key: TokenKey) -> tuple[str, str, str, str]:
    """The key's four parts, refused (typed) when PostgreSQL text cannot hold them."""
    if any("\x00" in part for part in key.parts):
        raise InvalidTokenKey("a TokenKey part contains NUL, which PostgreSQL text cannot hold")
    return key.parts


def render(template: str, schema: str) -> str:
    """``template`` with ``{s}`` as the quoted schema and ``{key}`` etc. as the fragments."""
    parts: dict[str, sql.Composable] = {"s": sql.Identifier(schema)}
    parts |= {name: sql.SQL(text) for name, text in _FRAGMENTS.items()}
    parts["fence"] = sql.SQL(_FENCE).format(**parts)
    return sql.SQL(template).format(**parts).as_string(None)


class Statements:
    """Every grant and lease statement the store runs, rendered once for its schema."""

    def __init__(self, schema: str) -> None:
        def q(template: str) -> str:
            return render(template, schema)

        self.schema = schema
        self.tables = tuple(q(t) for t in _TABLES)
        self.read_version = q("SELECT version FROM {s}.schema_version WHERE id = 1")
        self.write_version = q(
            "INSERT INTO {s}.schema_version (id, version) VALUES (1, %s) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version"
        )
        self.get = q("SELECT version, blob FROM {s}.grants WHERE {key}")
        self.version = q("SELECT version FROM {s}.grants WHERE {key}")
        self.update = q(
            "WITH {fence}, written AS (UPDATE {s}.grants SET version = %s, blob = %s, "
            "expires_at = %s, updated_at = %s, purge_at = %s "
            "WHERE {key} AND version = %s AND {unfenced} RETURNING 1) {verdict}"
        )
        self.insert = q(
            "WITH {fence}, written AS (INSERT INTO {s}.grants "
            "(tenant, user_id, issuer, client_id, version, blob, expires_at, updated_at, purge_at) "
            "SELECT %s, %s, %s, %s, %s::bigint, %s::bytea, %s::float8, %s::float8, %s::float8 "
            "WHERE {unfenced} "
            "ON CONFLICT (tenant, user_id, issuer, client_id) DO NOTHING RETURNING 1) {verdict}"
        )
        self.delete = q("DELETE FROM {s}.grants WHERE {key} RETURNING version")
        self.delete_if = q("DELETE FROM {s}.grants WHERE {key} AND version = %s RETURNING version")
        self.tenant_keys = q(
            "SELECT user_id, issuer, client_id FROM {s}.grants WHERE tenant = %s "
            "AND (user_id, issuer, client_id) > (%s, %s, %s) "
            "ORDER BY user_id, issuer, client_id LIMIT %s"
        )
        # Taken when free or lapsed, or again by the same holder (a retried acquisition
        # whose first answer was lost). The generation stays above the last one and
        # the clock, so a key whose lease row was cleaned up never reissues one. A lease
        # seen held is not even tried: polling waiters neither lock nor rewrite its row.
        self.acquire = q(
            "WITH held AS (SELECT 1 FROM {s}.leases WHERE {key} "
            "AND expires_at > clock_timestamp() AND holder <> %s) "
            "INSERT INTO {s}.leases AS l (tenant, user_id, issuer, client_id, holder, "
            "expires_at, generation) SELECT %s, %s, %s, %s, %s, "
            "clock_timestamp() + make_interval(secs => %s::float8), {now_us} "
            "WHERE NOT EXISTS (SELECT 1 FROM held) "
            "ON CONFLICT (tenant, user_id, issuer, client_id) DO UPDATE SET "
            "holder = excluded.holder, expires_at = excluded.expires_at, "
            "generation = greatest(l.generation + 1, excluded.generation) "
            "WHERE l.expires_at <= clock_timestamp() OR l.holder = excluded.holder "
            "RETURNING generation"
        )
        # A lapsed lease is never taken back: someone may have held it meanwhile.
        self.renew = q(
            "UPDATE {s}.leases SET expires_at = clock_timestamp() + make_interval(secs => %s) "
            "WHERE {key} AND holder = %s AND expires_at > clock_timestamp()"
        )
        # Released rows stay, expired at the release time, so the key's last generation
        # keeps fencing until purge_leases removes rows released a day ago.
        self.release = q(
            "UPDATE {s}.leases SET expires_at = clock_timestamp() "
            "WHERE {key} AND holder = %s AND expires_at > clock_timestamp()"
        )
        self.purge_grants = q("DELETE FROM {s}.grants WHERE purge_at <= %s")
        self.purge_leases = q(
            "DELETE FROM {s}.leases WHERE expires_at <= clock_timestamp() - interval '1 day'"
        )
        # Advisory lock ids are one bigint space per database: derive ours from the schema.
        digest = hashlib.sha256(f"whop_oauth schema {schema}".encode()).digest()
        self.creation_lock = int.from_bytes(digest[:8], "big", signed=True)


async def create_schema(conn: AsyncConnection[TupleRow], st: Statements) -> None:
    """Create the schema's tables unless they are there at the current version.

    A database already at this version is only read (no DDL, so an application role
    without CREATE rights works once the tables exist).
    """
    if await _version(conn, st) == SCHEMA_VERSION:
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (st.creation_lock,))
        for statement in st.tables:
            await conn.execute(statement)
        found = await _version(conn, st)
        if found is None or found < SCHEMA_VERSION:
            await conn.execute(st.write_version, (SCHEMA_VERSION,))


async def _version(conn: AsyncConnection[TupleRow], st: Statements) -> int | None:
    exists = await (
        await conn.execute("SELECT to_regclass(%s)", (f'"{st.schema}".schema_version',))
    ).fetchone()
    if exists is None or exists[0] is None:
        return None
    row = await (await conn.execute(st.read_version)).fetchone()
    if row is None:
        return None
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise TokenStoreError(
            f"the PostgreSQL schema {st.schema!r} has version {version}, newer than this "
            f"whop_oauth reads ({SCHEMA_VERSION})"
        )
    return version
