"""Checks on what the developer and tester wrote, before pytest sees it. Pure: source text in, findings out.

Small models make the same few structural mistakes, and each costs a whole fix round when pytest finds it:
the developer leaves `print(f(3))` or a test call at module level (it runs at import, often raising); the
tester pastes its own copy of the function into the test file and tests that copy, writes no test at all,
or calls its tests at module level. These are found by reading the syntax tree — never by running it — and
told to the agent in one sentence it can act on.

Everything here parses hostile text: the size is capped and every parser failure is "cannot tell" (pytest,
in the sandbox, reports the syntax error), never an exception.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_MAX_CHARS = 200_000


def _parse(source: str) -> ast.Module | None:
    if len(source) > _MAX_CHARS:
        return None
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


@dataclass(frozen=True)
class ImportTimeCode:
    lineno: int
    text: str


def import_time_code(source: str) -> list[ImportTimeCode]:
    """Top-level statements that do work when the module is imported: calls (print, tests) and asserts.

    Assignments, imports, definitions, docstrings and the `if __name__ == "__main__":` block are fine.
    """
    tree = _parse(source)
    if tree is None:
        return []
    found = []
    for node in tree.body:
        if _is_main_guard(node):
            continue
        loose = isinstance(node, ast.Assert) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
        if isinstance(node, ast.For | ast.While | ast.With) and any(isinstance(n, ast.Call) for n in ast.walk(node)):
            loose = True
        if loose:
            found.append(ImportTimeCode(node.lineno, ast.get_source_segment(source, node) or ""))
    return found


def without_import_time_code(source: str) -> tuple[str, list[ImportTimeCode]]:
    """The module with those statements removed (a library module never needs them), and what was removed.

    Removing them is safe: nothing else in the module can depend on a bare call's result or an assert.
    """
    found = import_time_code(source)
    if not found:
        return source, []
    tree = _parse(source)
    assert tree is not None
    drop: set[int] = set()
    starts = {f.lineno for f in found}
    for node in tree.body:
        if node.lineno in starts and node.end_lineno:
            drop.update(range(node.lineno - 1, node.end_lineno))
    lines = source.splitlines(keepends=True)
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    return kept.rstrip() + "\n", found


def defined_names(source: str) -> set[str]:
    """Top-level functions and classes a module defines."""
    tree = _parse(source)
    if tree is None:
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def _is_placeholder(stmt: ast.stmt) -> bool:
    """`pass`, `...`, a docstring or `raise NotImplementedError`: a statement that does no work."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return isinstance(stmt.value.value, str) or stmt.value.value is Ellipsis
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def stub_functions(source: str, names: set[str]) -> list[str]:
    """Functions among `names` whose body does nothing (the task's signature and docstring copied back).

    Seen on HumanEval/15: shown the signature in a code block, the 0.5B model answered with that block. Such
    an answer cannot pass anything; it is asked again at once instead of costing a pytest round.
    """
    tree = _parse(source)
    if tree is None:
        return []
    return sorted(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                  and n.name in names and all(_is_placeholder(s) for s in n.body))


_TASK_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def skeleton_problems(source: str, task: str) -> list[str]:
    """How a module departs from the class skeleton the task gives in a code block: a class or method
    missing, or a method whose parameters differ. ClassEval's tests (and a user's callers) call exactly the
    names and arguments of the skeleton; a renamed method fails every test of it."""
    wanted = _skeleton_classes(task)
    if not wanted:
        return []
    tree = _parse(source)
    if tree is None:
        return []  # a syntax error: pytest says it precisely
    have = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    problems = []
    for name, methods in wanted.items():
        cls = have.get(name)
        if cls is None:
            problems.append(f"the class `{name}` is missing")
            continue
        defined = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}
        for method, params in methods.items():
            got = defined.get(method)
            if got is None and not (method == "__init__" and params == ("self",)):  # object's own: same
                problems.append(f"`{name}.{method}` is missing")
            elif got is None:
                continue
            elif _params(got) != params:
                problems.append(f"`{name}.{method}` takes ({', '.join(_params(got))}), the task says "
                                f"({', '.join(params)})")
    return problems


# Told to the developer when the task gives a class skeleton: ClassEval-sized skeletons with their docstrings
# copied back ran past the 1024-token answer limit, and an answer cut off before its closing fence holds no
# module at all (measured on ClassEval/4 at fb8f9a1: 349 s for an answer with no module).
CLASS_ADVICE = "Write the body of every method; no docstrings, no comments, no examples."


def task_code_blocks(task: str) -> list[str]:
    """The Python code blocks the task shows (a skeleton, a signature with its docstring)."""
    return [str(b) for b in _TASK_FENCE.findall(task[:_MAX_CHARS])]


def has_class_skeleton(task: str) -> bool:
    return bool(_skeleton_classes(task))


def _skeleton_classes(task: str) -> dict[str, dict[str, tuple[str, ...]]]:
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for block in task_code_blocks(task):
        tree = _parse(block)
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.ClassDef):
                out[node.name] = {m.name: _params(m) for m in node.body
                                  if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}
    return out


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args)]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    names += [x.arg for x in a.kwonlyargs]
    if a.kwarg:
        names.append("**" + a.kwarg.arg)
    return tuple(names)


@dataclass(frozen=True)
class TestFileProblem:
    __test__ = False
    what: str        # one sentence for the tester


def test_file_problems(source: str, *, module_name: str, under_test: set[str]) -> list[TestFileProblem]:
    """Why a model-written test file cannot be used as it is (empty when it can)."""
    tree = _parse(source)
    if tree is None:
        return []  # a syntax error: pytest reports it precisely
    problems = []
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
             and n.name.startswith("test")]
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Test")]
    if not tests and not classes:
        problems.append(TestFileProblem("the file holds no test: write functions named test_… with asserts"))
    own = sorted(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                 and n.name in under_test)
    if own:
        names = ", ".join(f"`{n}`" for n in own)
        problems.append(TestFileProblem(
            f"the test file defines {names} itself, so it would test its own copy: delete that definition and "
            f"import it with `from {module_name} import {', '.join(own)}`"))
    calls = [n for n in tree.body if not _is_main_guard(n) and isinstance(n, ast.Expr)
             and isinstance(n.value, ast.Call)]
    if calls:
        shown = (ast.get_source_segment(source, calls[0]) or "")[:60]
        problems.append(TestFileProblem(
            f"line {calls[0].lineno} calls code at module level (`{shown}`): "
            "pytest calls the test functions itself; remove such calls"))
    return problems


def missing_import(source: str, *, module_name: str, under_test: set[str]) -> str | None:
    """An import line to add when the tests use the functions under test without importing them."""
    tree = _parse(source)
    if tree is None:
        return None
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == module_name:
            imported.update(a.asname or a.name for a in node.names)
            if any(a.name == "*" for a in node.names):
                return None
        elif isinstance(node, ast.Import) and any(a.name == module_name for a in node.names):
            return None
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & under_test
    need = sorted(used - imported - defined_names(source))
    return f"from {module_name} import {', '.join(need)}" if need else None


def task_imports(task: str) -> list[str]:
    """Import statements the task's own code shows (e.g. `from typing import List` above a signature)."""
    found: list[str] = []
    for line in task[:_MAX_CHARS].splitlines():
        stripped = line.strip()
        if not stripped.startswith(("import ", "from ")) or stripped in found:
            continue
        tree = _parse(stripped)
        if tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], ast.Import | ast.ImportFrom):
            found.append(stripped)
    return found


def _names_bound(imp: str) -> set[str]:
    node = ast.parse(imp).body[0]
    assert isinstance(node, ast.Import | ast.ImportFrom)
    return {(a.asname or a.name).split(".")[0] for a in node.names}


def with_task_imports(source: str, task: str) -> tuple[str, list[str]]:
    """The module with the imports it lacks put first: the task's own (its signatures use them, `List[int]`,
    and a small model often copies the signature without the import) and standard modules it uses without
    importing (`re.sub` with no `import re`). Either made the module fail at import or at first call."""
    tree = _parse(source)
    if tree is None:
        return source, []
    have = {ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
    missing = [imp for imp in task_imports(task) if ast.unparse(ast.parse(imp).body[0]) not in have]
    task_bound = {name for imp in missing for name in _names_bound(imp)}
    missing += [imp for imp in missing_stdlib_imports(source) if not _names_bound(imp) & task_bound]
    if not missing:
        return source, []
    lines = source.splitlines(keepends=True)
    after = max((n.end_lineno or 0 for n in tree.body
                 if isinstance(n, ast.ImportFrom) and n.module == "__future__"), default=0)
    return "".join(lines[:after]) + "\n".join(missing) + "\n" + "".join(lines[after:]), missing


# Standard modules small models use without importing them, and the typing names they annotate with.
_STDLIB_USED_BARE = frozenset({"re", "math", "string", "itertools", "collections", "functools", "datetime",
                               "json", "random", "os", "sys", "heapq", "bisect", "statistics", "operator",
                               "fractions", "decimal", "time", "copy", "hashlib"})
_TYPING_NAMES = frozenset({"List", "Dict", "Tuple", "Set", "Optional", "Any", "Union", "Callable", "Iterable",
                           "Iterator", "Sequence", "Mapping"})


def missing_stdlib_imports(source: str) -> list[str]:
    """Imports a module needs for standard names it uses but never imports or defines (`re.sub` with no
    `import re`; `List[int]` with no typing import): adding them cannot change what the code means."""
    tree = _parse(source)
    if tree is None:
        return []
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    modules = sorted((loaded & _STDLIB_USED_BARE) - bound)
    typing_names = sorted((loaded & _TYPING_NAMES) - bound)
    return [f"import {m}" for m in modules] + ([f"from typing import {', '.join(typing_names)}"]
                                                if typing_names else [])


def split_asserts(source: str) -> tuple[str, int]:
    """Each test function that is only a list of asserts becomes one test per assert; returns the new source
    and how many functions were split.

    The tester is asked for one behaviour per test, but the 0.5B model writes one test with four asserts;
    one wrong expected value (seen: `flip_case('WORLD') == 'wORLD'`) then hides the three right ones, and
    the round's score cannot tell one wrong value from four. Only functions without decorators, arguments or
    setup are split (asserts alone cannot depend on each other); docstrings, comments and prints are dropped.
    """
    tree = _parse(source)
    if tree is None:
        return source, 0
    lines = source.splitlines(keepends=True)
    replace: dict[int, tuple[int, str]] = {}  # first line index -> (end line index, new text)
    for fn in tree.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test") and not fn.decorator_list
                and not fn.args.args and fn.end_lineno):
            continue
        asserts = [s for s in fn.body if isinstance(s, ast.Assert)]
        others = [s for s in fn.body if not isinstance(s, ast.Assert) and not _is_noise(s)]
        if len(asserts) < 2 or others:
            continue
        parts = []
        for i, node in enumerate(asserts, 1):
            text = "".join(lines[node.lineno - 1:node.end_lineno or node.lineno])
            parts.append(f"def {fn.name}_{i}():\n{text.rstrip()}\n")
        replace[fn.lineno - 1] = (fn.end_lineno, "\n\n".join(parts))
    if not replace:
        return source, 0
    out, i = [], 0
    while i < len(lines):
        if i in replace:
            end, text = replace[i]
            out.append(text)
            i = end
        else:
            out.append(lines[i])
            i += 1
    return "".join(out), len(replace)


def _is_noise(stmt: ast.stmt) -> bool:
    """A docstring, a bare constant or a print(): nothing a test's outcome depends on."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return True
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
            and stmt.value.func.id == "print")


_MAX_UNPARSABLE_LINES = 8


def parseable(source: str) -> tuple[str, list[str]] | None:
    """The source with the lines that do not parse removed, one at a time where the parser points, and
    those lines; None when a few removals do not make it parse (or it is too large to try).

    Seen on the 0.5B default: one assert of five written as `slugify("!@#$%^&*()_+{}|":)` — the whole test
    file failed to import and took the user's examples down with it. One broken line of a model's test is
    one wrong piece of evidence, not a reason to lose the other tests.
    """
    if len(source) > _MAX_CHARS:
        return None
    lines = source.splitlines(keepends=True)
    removed: list[str] = []
    for _ in range(_MAX_UNPARSABLE_LINES + 1):
        text = "".join(lines)
        try:
            ast.parse(text)
            return text, removed
        except (SyntaxError, ValueError) as err:
            lineno = getattr(err, "lineno", None)
        except (MemoryError, RecursionError):
            return None
        if len(removed) >= _MAX_UNPARSABLE_LINES or not isinstance(lineno, int) or not 1 <= lineno <= len(lines):
            return None
        removed.append(lines.pop(lineno - 1).rstrip())
    return None
