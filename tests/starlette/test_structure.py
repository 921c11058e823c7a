"""WhopAuth is a façade, not a service locator: the parts share a leaf ``Site`` (and its
``CookiePolicy``), so no module of ``whop_oauth.starlette`` imports another in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

import whop_oauth.starlette
from whop_oauth import OAuthClient, TokenManager
from whop_oauth.starlette import WhopAuth
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop

PACKAGE = Path(whop_oauth.starlette.__file__).parent


def test_whop_auth_offers_only_routes_middleware_http_client_and_aclose() -> None:
    mock = MockWhop()
    client = OAuthClient(
        client_id="app_mock",
        redirect_uri="https://app.test/auth/callback",
        provider=mock.metadata,
        http_client=httpx.AsyncClient(transport=mock.transport()),
    )
    whop = WhopAuth(client, TokenManager(client, MemoryTokenStore()), secret_keys=["k" * 40])

    public = {name for name in dir(whop) if not name.startswith("_")}
    assert public == {"routes", "middleware", "http_client", "aclose"}


def _imports(module: Path) -> set[str]:
    """Sibling modules ``module`` imports, ``if TYPE_CHECKING:`` blocks included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_of_the_starlette_package_imports_another_in_a_circle() -> None:
    graph = {path.stem: _imports(path) for path in PACKAGE.glob("_*.py")}
    cycles: set[tuple[str, ...]] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in graph.get(module, set()):
            if target in path:
                cycles.add(tuple(sorted(path[path.index(target):])))
            else:
                visit(target, [*path, target])

    for module in graph:
        visit(module, [module])
    assert cycles == set()
