"""Names the store tests import: the backends (tests/support/store_fixtures.py) and the
sign-in driver (tests/support/app_driver.py)."""

from __future__ import annotations

from app_driver import USER, expired, make_client, sign_in
from store_fixtures import BACKENDS, SHARED_BACKENDS, StoreFactory, Workers

__all__ = [
    "BACKENDS",
    "SHARED_BACKENDS",
    "USER",
    "StoreFactory",
    "Workers",
    "expired",
    "make_client",
    "sign_in",
]
