"""pytest plugin registered by the ``whop_oauth`` entry point: mock Whop fixtures.

Loaded in every pytest run of every project that installs whop_oauth, so it imports
nothing heavy at module level; ``MockWhop`` is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from whop_oauth.testing import MockWhop


@pytest.fixture
def mock_whop() -> MockWhop:
    """A fresh in-process ``MockWhop``; talk to it through ``mock_whop.transport()``."""
    from whop_oauth.testing import MockWhop

    return MockWhop()


@pytest.fixture
def mock_whop_server() -> Iterator[MockWhop]:
    """A ``MockWhop`` served on a free loopback port; ``mock_whop_server.issuer`` is its URL."""
    from whop_oauth.testing import MockWhop

    with MockWhop.on_free_port() as mock:
        yield mock
