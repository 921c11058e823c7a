"""Demo conveniences: generated keys kept in a local file, and the built-in mock Whop."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path

from starlette.datastructures import Secret

from whop_oauth import Settings
from whop_oauth.stores import generate_encryption_key

logger = logging.getLogger("examples.starlette_app")

#: Where generated keys live, next to the default SQLite store (both gitignored).
KEY_FILE = Path(".whop_demo_keys.json")
MOCK_PREFIX = "/mock-whop"


def _create_key_file(path: Path) -> None:
    keys = {"session": secrets.token_urlsafe(32), "encryption": generate_encryption_key()}
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=".whop_demo_keys.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(keys, handle)
        # link() fails if the file exists: with --workers 4 exactly one process wins,
        # and every worker then reads the same keys.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def load_demo_keys(path: Path = KEY_FILE) -> tuple[str, str]:
    """``(session_key, encryption_key)`` from ``path``, created (mode 0600) if missing."""
    if not path.exists():
        _create_key_file(path)
    data = json.loads(path.read_text())
    return data["session"], data["encryption"]


def with_demo_keys(settings: Settings, path: Path = KEY_FILE) -> Settings:
    """``settings`` with generated keys wherever none were configured (and a warning)."""
    in_memory = str(settings.token_store).startswith("memory:")
    if settings.session_secrets and (settings.encryption_keys or in_memory):
        return settings
    session_key, encryption_key = load_demo_keys(path)
    logger.warning(
        "WHOP_SESSION_SECRETS / WHOP_ENCRYPTION_KEYS not set: using generated demo keys "
        "from %s. Set both in production.",
        path,
    )
    return replace(
        settings,
        session_secrets=settings.session_secrets or (Secret(session_key),),
        encryption_keys=settings.encryption_keys or (Secret(encryption_key),),
    )


def mock_issuer(settings: Settings) -> str:
    """The mock's issuer: this app's own origin plus ``/mock-whop``, so the browser reaches it."""
    scheme, _, rest = settings.redirect_uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}{MOCK_PREFIX}"
