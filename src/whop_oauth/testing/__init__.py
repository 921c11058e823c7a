"""Test helpers: a mock Whop OAuth provider (``MockWhop``) and pytest fixtures.

```python
from whop_oauth.testing import MockWhop

mock = MockWhop()                      # in-process: use mock.transport() with httpx
with MockWhop.on_free_port() as mock:  # on a real loopback port, issuer == its URL
    ...
```

The pytest plugin (installed with the package) adds the ``mock_whop`` and
``mock_whop_server`` fixtures. Run it standalone with ``python -m whop_oauth.testing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._mock_model import MockClient as MockClient
    from ._mock_model import MockGrant as MockGrant
    from ._mock_model import MockStats as MockStats
    from ._mock_model import MockUser as MockUser
    from ._mock_whop import MockWhop as MockWhop

__all__ = ["MockClient", "MockGrant", "MockStats", "MockUser", "MockWhop"]

# Imported on first use: the pytest plugin in this package is loaded by every pytest
# run of every project that installs whop_oauth, and must not pull in the mock.
_HOMES = {
    "MockClient": "._mock_model",
    "MockGrant": "._mock_model",
    "MockStats": "._mock_model",
    "MockUser": "._mock_model",
    "MockWhop": "._mock_whop",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
