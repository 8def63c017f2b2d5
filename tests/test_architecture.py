"""The shape of the code: no import circles, and a small top level.

The import graph is built with grimp, which reads every ``import`` statement, those inside
functions included, without running anything. The direction of the layers is checked by
``lint-imports`` (the contract in pyproject.toml); this test catches circles inside a layer,
which the layers contract cannot see.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

import villagesim

PACKAGE = "villagesim"
MAX_TOP_LEVEL_MODULES = 12

# TEMPORARY: circles inside processes/ and state/ whose fix is under way. A circle found here
# may be one of these or a part of one (a partial fix); any other fails the test, and an entry
# that no longer matches any circle fails it too, so that the list is emptied, then deleted.
TEMPORARY_CYCLES: list[frozenset[str]] = []
"""Circles known and not yet removed (none): a new one fails the test."""


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # TYPE_CHECKING imports never run (agents.py says why it has one); pyproject's
    # [tool.importlinter] leaves them out the same way
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the components of more than one module."""
    modules = sorted(graph.modules)
    succ = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(component)
    return out


def _describe(graph: grimp.ImportGraph, component: set[str]) -> str:
    """One circle through the component's first module, each import with its line."""
    start = min(component)
    lines = [f"import circle among {', '.join(sorted(component))}:"]
    for target in sorted(graph.find_modules_directly_imported_by(start) & component):
        back = graph.find_shortest_chain(importer=target, imported=start)
        if back is None:
            continue
        chain = (start, *back)
        for importer, imported in zip(chain, chain[1:], strict=False):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"l.{d['line_number']}: {d['line_contents']}" for d in details)
            lines.append(f"  {importer} -> {imported} ({where})")
        break
    return "\n".join(lines)


def test_no_import_circles(graph):
    found = _strongly_connected(graph)
    new = [c for c in found if not any(c <= known for known in TEMPORARY_CYCLES)]
    assert not new, "\n\n".join(_describe(graph, c) for c in new)
    stale = [known for known in TEMPORARY_CYCLES if not any(c <= known for c in found)]
    assert not stale, f"these circles are gone: remove them from TEMPORARY_CYCLES: {[sorted(s) for s in stale]}"


def test_no_module_imports_the_root_package(graph):
    """The root package offers the public API lazily, by name (grimp cannot see that); a module
    that imported it would depend on everything unseen. Modules import what they use from the
    module that defines it (the version from villagesim.version)."""
    importers = sorted(graph.find_modules_that_directly_import(PACKAGE))
    assert not importers, f"these modules import the root package {PACKAGE}: {importers}"


def test_the_circle_finder_finds_circles():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c", "p.d"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.d", imported="p.a")
    assert _strongly_connected(graph) == [{"p.a", "p.b", "p.c"}]


def test_top_level_stays_small():
    top = sorted(p.name for p in Path(villagesim.__file__).parent.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, (
        f"{len(top)} modules directly in src/villagesim/ (at most {MAX_TOP_LEVEL_MODULES}): {top}"
    )
