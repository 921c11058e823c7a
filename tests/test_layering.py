"""The import graph of ``src/whop_oauth`` keeps the layers ARCHITECTURE.md draws.

The layers are read from the "Layers" table of ARCHITECTURE.md, so the drawing and
this test cannot drift apart: every module sits in exactly one layer and imports
only from its own layer and the layers below it (those its row names, theirs, ...).

Type-only imports (under ``if TYPE_CHECKING:``) obey the layers too: they are how a
module says what it depends on, and the back-edge this test was written for
(``_user_auth`` naming ``TokenManager``) was one. They cannot make an import-time
cycle, so the package-wide cycle check counts runtime imports only; inside
``whop_oauth.starlette``, whose parts share a leaf ``Site``, no circle is allowed
even through type-only imports.

``importlib.import_module`` calls are not seen: the one in ``testing/__init__`` (lazy,
within its own layer) names the same modules under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import graphlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import whop_oauth

PACKAGE = Path(whop_oauth.__file__).parent
ARCHITECTURE = PACKAGE.parents[1] / "ARCHITECTURE.md"


@dataclass(frozen=True)
class Edge:
    source: str  # dotted module names: "whop_oauth._client", "whop_oauth.stores"
    target: str
    type_only: bool


def modules(package: Path) -> dict[str, Path]:
    """Dotted name → file of every module under ``package`` (a package is its ``__init__``)."""
    found: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return nodes


def _imported(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The dotted names an import statement loads (some may be third-party)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if not node.level:
        base = node.module or ""
    else:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    # "from . import _x" and "from .stores import _sqlite" may name submodules.
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_edges(package: Path) -> list[Edge]:
    """Every import of one module of ``package`` by another, function-level ones included."""
    files = modules(package)
    edges: set[Edge] = set()
    for source, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            for name in _imported(source, path.name == "__init__.py", node):
                if name in files and name != source:
                    edges.add(Edge(source, name, id(node) in type_only))
    return sorted(edges, key=lambda edge: (edge.source, edge.target, edge.type_only))


@dataclass(frozen=True)
class Layers:
    members: Mapping[str, tuple[str, ...]]  # layer → entries: "_client", "stores/", "__init__"
    below: Mapping[str, frozenset[str]]  # layer → the layers it may import, transitively

    def layer_of(self, module: str) -> list[str]:
        relative = module.removeprefix(PACKAGE.name).removeprefix(".")
        hits = []
        for layer, entries in self.members.items():
            for entry in entries:
                if entry == "__init__":
                    matched = relative == ""
                elif entry.endswith("/"):
                    folder = entry.rstrip("/").replace("/", ".")
                    matched = relative == folder or relative.startswith(f"{folder}.")
                else:
                    matched = relative == entry.replace("/", ".")
                if matched:
                    hits.append(layer)
        return hits

    def allows(self, source_layer: str, target_layer: str) -> bool:
        return target_layer == source_layer or target_layer in self.below[source_layer]


def read_layers(markdown: str) -> Layers:
    """The ``| layer | modules | imports from |`` table under ``## Layers``."""
    section = markdown.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # skip the header
    members: dict[str, tuple[str, ...]] = {}
    direct: dict[str, set[str]] = {}
    for row in rows:
        layer, entries, imports = (cell.strip() for cell in row.strip("|").split("|"))
        members[layer] = tuple(re.findall(r"`([^`]+)`", entries))
        direct[layer] = {
            name.strip() for name in imports.split(",") if name.strip() not in {"", "—"}
        }
    below: dict[str, frozenset[str]] = {}
    for layer in direct:
        seen: set[str] = set()
        todo = list(direct[layer])
        while todo:
            name = todo.pop()
            assert name in direct, f"layer {layer!r} imports from unknown layer {name!r}"
            if name not in seen:
                seen.add(name)
                todo.extend(direct[name])
        assert layer not in seen, f"layer {layer!r} is below itself"
        below[layer] = frozenset(seen)
    return Layers(members, below)


def cycle(edges: Iterable[Edge]) -> list[str] | None:
    """One import circle (its modules, the first repeated at the end), or None."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def layer_violations(edges: Iterable[Edge], layers: Layers) -> list[str]:
    """Imports from a higher layer (or a layer not below this one), as readable lines."""
    wrong = []
    for edge in edges:
        (source,), (target,) = layers.layer_of(edge.source), layers.layer_of(edge.target)
        if not layers.allows(source, target):
            kind = " (type-only)" if edge.type_only else ""
            wrong.append(f"{edge.source} [{source}] imports {edge.target} [{target}]{kind}")
    return wrong


LAYERS = read_layers(ARCHITECTURE.read_text(encoding="utf-8"))
EDGES = import_edges(PACKAGE)


def test_every_module_sits_in_exactly_one_layer_of_the_drawing() -> None:
    placed = {module: LAYERS.layer_of(module) for module in modules(PACKAGE)}

    assert {module: hits for module, hits in placed.items() if len(hits) != 1} == {}


def test_every_module_the_drawing_names_exists() -> None:
    names = set(modules(PACKAGE))
    for entries in LAYERS.members.values():
        for entry in entries:
            if entry != "__init__":
                dotted = f"{PACKAGE.name}.{entry.rstrip('/').replace('/', '.')}"
                assert dotted in names, entry


def test_no_module_imports_from_a_higher_layer_even_for_types_only() -> None:
    assert layer_violations(EDGES, LAYERS) == []


def test_no_runtime_import_cycle_in_the_package() -> None:
    assert cycle(edge for edge in EDGES if not edge.type_only) is None


def test_no_import_cycle_inside_the_starlette_package_even_for_types_only() -> None:
    inside = f"{PACKAGE.name}.starlette."
    local = [e for e in EDGES if e.source.startswith(inside) and e.target.startswith(inside)]

    assert local  # the check looks at something
    assert cycle(local) is None


def test_only_the_starlette_package_itself_imports_the_whop_auth_facade() -> None:
    facade = f"{PACKAGE.name}.starlette._auth"

    assert {e.source for e in EDGES if e.target == facade} == {f"{PACKAGE.name}.starlette"}


# The checks themselves, on small made-up packages: each must catch what it is for.


def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_graph_sees_relative_absolute_function_level_and_type_only_imports(
    tmp_path: Path,
) -> None:
    root = _package(
        tmp_path,
        {
            "_low.py": "",
            "_high.py": (
                "from typing import TYPE_CHECKING\nfrom ._low import x\n"
                "if TYPE_CHECKING:\n    from .sub import _deep\n"
                "def f():\n    import pkg.sub\n"
            ),
            "sub/__init__.py": "from . import _deep\nfrom .._low import y\n",
            "sub/_deep.py": "import httpx\n",
        },
    )

    assert set(import_edges(root)) == {
        Edge("pkg._high", "pkg._low", type_only=False),
        Edge("pkg._high", "pkg.sub", type_only=True),
        Edge("pkg._high", "pkg.sub._deep", type_only=True),
        Edge("pkg._high", "pkg.sub", type_only=False),
        Edge("pkg.sub", "pkg.sub._deep", type_only=False),
        Edge("pkg.sub", "pkg._low", type_only=False),
    }


def test_a_back_edge_is_reported_even_when_it_is_type_only() -> None:
    layers = read_layers(
        "\n## Layers\n\n| layer | modules | imports from |\n|---|---|---|\n"
        "| low | `_low` | — |\n| mid | `_mid` | low |\n| top | `sub/` | mid |\n\n## Next\n"
    )
    edges = [
        Edge("whop_oauth.sub._a", "whop_oauth._low", type_only=False),  # two layers down: fine
        Edge("whop_oauth._low", "whop_oauth.sub", type_only=True),  # a back-edge
    ]

    assert layer_violations(edges, layers) == [
        "whop_oauth._low [low] imports whop_oauth.sub [top] (type-only)"
    ]


def test_a_circle_is_found_whatever_its_length() -> None:
    ring = [Edge("a", "b", False), Edge("b", "c", False), Edge("c", "a", False)]

    found = cycle(ring)

    assert found is not None
    assert (set(found), found[0] == found[-1]) == ({"a", "b", "c"}, True)
    assert cycle(ring[:2]) is None


def test_a_layer_table_that_loops_is_refused() -> None:
    with pytest.raises(AssertionError, match="below itself"):
        read_layers(
            "\n## Layers\n\n| layer | modules | imports from |\n|---|---|---|\n"
            "| a | `_a` | b |\n| b | `_b` | a |\n"
        )
