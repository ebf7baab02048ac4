"""A class built method by method: one request per method to write, against the skeleton, and the module put
back together from the skeleton and the methods (pure).

ClassEval's paper found weaker models do better building a class a method at a time than all at once; the
0.5B developer, asked for a whole ClassEval class, ran to its token limit or dropped methods (issue #26). Each
request shows the whole task (so attributes set in `__init__` are known) and asks for one method; the answers
are independent of each other, so they are asked at once (crew/run/by_method.py). A method whose answer holds
no usable `def` keeps the skeleton's (its docstring or `pass`), and the module is still whole.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from crew.answers.codeblocks import extract_code_files

_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_MAX_CHARS = 100_000


@dataclass(frozen=True)
class Skeleton:
    """The task's class skeleton: the code block it came from, its class, and the methods left to write."""

    code: str
    cls: str
    todo: tuple[str, ...]      # methods whose body is only a docstring or `pass`, in the skeleton's order


def skeleton(task: str) -> Skeleton | None:
    """The first code block of the task that holds a class with methods to write; None when there is none."""
    for block in _FENCE.findall(task[:_MAX_CHARS]):
        tree = _parse(block)
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.ClassDef):
                todo = tuple(m.name for m in node.body
                             if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef) and _empty(m))
                if todo:
                    return Skeleton(code=block, cls=node.name, todo=todo)
    return None


def request(task_for_developer: str, sk: Skeleton, method: str) -> str:
    """The request for one method: the task as the developer sees it, then what to write."""
    return (f"{task_for_developer.strip()}\n\nWrite only the method `{method}` of the class `{sk.cls}`: its `def` "
            f"line exactly as in the skeleton, then its complete body, using the attributes `__init__` sets. "
            f"Answer with that one method in one ```python code block; no other method, no docstring.")


def method_source(answer: str, method: str) -> str | None:
    """The `def` of `method` in an answer, dedented (found at top level or inside a class); None if absent or
    if the answer does not parse."""
    for cf in extract_code_files(answer, default_name="method.py"):
        tree = _parse(cf.content)
        if tree is None:
            continue
        lines = cf.content.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == method \
                    and not _empty(node):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
                end = node.end_lineno or node.lineno
                return textwrap.dedent("\n".join(lines[start:end]))
    return None


def assemble(sk: Skeleton, methods: dict[str, str]) -> str | None:
    """The skeleton's code with each written method in place of its empty one; None when the result does not
    parse (a method that breaks the module is then left out by the caller, one at a time)."""
    tree = _parse(sk.code)
    if tree is None:
        return None
    lines = sk.code.splitlines()
    spans: list[tuple[int, int, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == sk.cls:
            for m in node.body:
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef) and m.name in methods:
                    start = min([d.lineno for d in m.decorator_list] + [m.lineno]) - 1
                    indent = lines[m.lineno - 1][: len(lines[m.lineno - 1]) - len(lines[m.lineno - 1].lstrip())]
                    spans.append((start, m.end_lineno or m.lineno, textwrap.indent(methods[m.name], indent)))
    for start, end, text in sorted(spans, reverse=True):
        lines[start:end] = text.splitlines()
    out = "\n".join(lines) + "\n"
    return out if _parse(out) is not None else None


def module(sk: Skeleton, methods: dict[str, str]) -> tuple[str, int]:
    """The whole module and how many written methods it holds: a method whose text breaks the module is left
    as the skeleton has it, one at a time, in the skeleton's order."""
    kept = dict(methods)
    code = assemble(sk, kept)
    for name in list(kept):
        if code is not None:
            break
        del kept[name]
        code = assemble(sk, kept)
    return (code, len(kept)) if code is not None else (sk.code, 0)


def _empty(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A body of only a docstring, `pass` or `...`."""
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in fn.body)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
