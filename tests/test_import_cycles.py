"""No import cycles in crew/: each module's imports, read with `ast` (nothing is imported), form a DAG.

Edges come in three kinds, told apart by where the import statement sits:
- `runtime`: at module level (also inside module-level `if`/`try`/`with` and class bodies), run on import;
- `typing`: under `if TYPE_CHECKING:`; never run, but a cycle through it is still two modules that each
  need the other's names (the types live in the wrong place), and mypy follows it;
- `deferred`: inside a function body; run on the first call.

The first test asserts no cycle among runtime + typing edges: that is the import graph the modules
declare. Deferred imports are counted in a second test of their own, because a function-level import is
also the usual way to keep a heavy or optional dependency (rich, pynvml, llama_cpp, matplotlib) off the
import path; but a cycle closed by one is still two modules that need each other (the three cycles of
issue #14 were all hidden that way, or behind TYPE_CHECKING), so it fails too, with its own message.
Run as a script (`python tests/test_import_cycles.py`) to print the counts for each kind and every cycle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "crew"

Kind = Literal["runtime", "typing", "deferred"]


class Edge(NamedTuple):
    source: str
    target: str
    kind: Kind
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: Iterable[ast.stmt], kind: Kind) -> Iterator[tuple[ast.Import | ast.ImportFrom, Kind]]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, kind
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _all_imports(node, "deferred")
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.body, "typing" if kind == "runtime" else kind)
            yield from _imports(node.orelse, kind)
        else:  # if/try/with/for/class bodies at this level run when the module runs
            for field in ("body", "orelse", "finalbody", "handlers"):
                child = getattr(node, field, None)
                if isinstance(child, list):
                    yield from _imports(child, kind)


def _all_imports(node: ast.AST, kind: Kind) -> Iterator[tuple[ast.Import | ast.ImportFrom, Kind]]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import | ast.ImportFrom):
            yield sub, kind


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def edges(root: Path = ROOT, package: str = PACKAGE) -> list[Edge]:
    files = sorted((root / package).rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    found: list[Edge] = []
    for f in files:
        source = module_name(f, root)
        is_package = f.name == "__init__.py"
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node, kind in _imports(tree.body, "runtime"):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importer's package, `level` steps up
                    anchor = source.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import sub` imports the submodule when there is one, else a name from pkg
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for name in names:
                target = _resolve(name, modules)
                if target is None or target == source:
                    continue
                found.append(Edge(source, target, kind, node.lineno))
                # importing a.b.c runs a/__init__ and a/b/__init__ first; the importer's own packages are
                # already running when it is imported, so only the others count
                for package in _packages(target):
                    if package in modules and package != source and package not in _packages(source):
                        found.append(Edge(source, package, kind, node.lineno))
    return found


def _packages(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def cycles(found: Iterable[Edge], kinds: set[Kind]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a list of modules."""
    graph: dict[str, set[str]] = {}
    for e in found:
        if e.kind in kinds:
            graph.setdefault(e.source, set()).add(e.target)
            graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(result)


def describe(component: list[str], found: Iterable[Edge], kinds: set[Kind]) -> str:
    """A cycle's modules and the import lines that tie them, to fix from the failure message alone."""
    members = set(component)
    ties = sorted({e for e in found if e.source in members and e.target in members and e.kind in kinds})
    lines = [f"cycle: {', '.join(component)}"]
    lines += [f"  {e.source} -> {e.target}  ({e.kind}, line {e.line})" for e in ties]
    return "\n".join(lines)


RUNTIME: set[Kind] = {"runtime"}
STATIC: set[Kind] = {"runtime", "typing"}
ALL: set[Kind] = {"runtime", "typing", "deferred"}


def test_no_cycle_among_module_level_imports() -> None:
    found = edges()
    bad = cycles(found, STATIC)
    assert not bad, "\n".join(describe(c, found, STATIC) for c in bad)


def test_no_cycle_closed_by_a_function_level_import() -> None:
    found = edges()
    bad = cycles(found, ALL)
    assert not bad, "a function-level import hides these (move the shared types or code to a module "\
        "both can import):\n" + "\n".join(describe(c, found, ALL) for c in bad)


def test_the_checker_finds_a_cycle_of_each_kind(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n")
    (pkg / "c.py").write_text("def f():\n    from . import d\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    (pkg / "e").mkdir()
    (pkg / "e" / "__init__.py").write_text("from pkg.e import f\n")
    (pkg / "e" / "f.py").write_text("from pkg.e import h\n")  # its own package is running already: no cycle
    (pkg / "e" / "h.py").write_text("")
    (pkg / "x").mkdir()
    (pkg / "x" / "__init__.py").write_text("import pkg.y\n")
    (pkg / "x" / "z.py").write_text("")
    (pkg / "y.py").write_text("from pkg.x.z import *\n")  # runs pkg/x/__init__.py, which imports pkg.y
    found = edges(tmp_path, "pkg")
    assert cycles(found, RUNTIME) == [["pkg.x", "pkg.y"]]
    assert cycles(found, STATIC) == [["pkg.a", "pkg.sub.b"], ["pkg.x", "pkg.y"]]
    assert cycles(found, ALL) == [["pkg.a", "pkg.sub.b"], ["pkg.c", "pkg.d"], ["pkg.x", "pkg.y"]]
    assert "pkg.sub.b -> pkg.a  (typing, line 3)" in describe(["pkg.a", "pkg.sub.b"], found, STATIC)


if __name__ == "__main__":
    all_edges = edges()
    for label, kinds in (("runtime", RUNTIME), ("runtime+typing", STATIC), ("all, deferred too", ALL)):
        found_cycles = cycles(all_edges, kinds)
        print(f"{label}: {len(found_cycles)} cycle(s)")
        for c in found_cycles:
            print(describe(c, all_edges, kinds))
