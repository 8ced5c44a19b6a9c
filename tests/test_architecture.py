"""The package layering holds: the import contract in setup.cfg is kept, and no package's parts
import each other in a circle (docs/architecture.md, "The layering we hold to")."""
from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("server", cache_dir=None)


def test_the_import_contract_is_kept() -> None:
    """``lint-imports`` with setup.cfg's contracts (layers; no Flask in registry or scoring)."""
    assert lint_imports(config_filename=str(ROOT / "setup.cfg"), no_cache=True) == 0, \
        "an import breaks the contract in setup.cfg: run lint-imports to see which"


def _cycles(graph: grimp.ImportGraph, package: str) -> list[tuple[str, str]]:
    """Pairs of ``package``'s children (modules or subpackages) that reach each other."""
    children = graph.find_children(package)

    def owner(module: str) -> str | None:
        return next((c for c in children if module == c or module.startswith(c + ".")), None)

    edges: dict[str, set[str]] = {c: set() for c in children}
    for child in children:
        for module in {child} | graph.find_descendants(child):
            for imported in graph.find_modules_directly_imported_by(module):
                target = owner(imported)
                if target is not None and target != child:
                    edges[child].add(target)

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reachable = {c: reach(c) for c in children}
    return sorted({tuple(sorted((a, b))) for a in children for b in reachable[a]  # type: ignore[misc]
                   if a != b and a in reachable[b]})


def test_no_package_imports_in_a_circle(graph: grimp.ImportGraph) -> None:
    """Checked for ``server`` itself and every package inside it (e.g. scoring.compiled)."""
    found = {package: _cycles(graph, package)
             for package in sorted(m for m in graph.modules if graph.find_children(m))}
    assert {p: c for p, c in found.items() if c} == {}


def test_types_import_nothing_of_ours(graph: grimp.ImportGraph) -> None:
    outside = {(module, imported)
               for module in graph.find_descendants("server.types") | {"server.types"}
               for imported in graph.find_modules_directly_imported_by(module)
               if imported.split(".")[0] == "server" and not imported.startswith("server.types")}
    assert outside == set()
