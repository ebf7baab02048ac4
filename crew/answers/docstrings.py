"""The task's docstrings put back into an attempt that left them out.

Independent attempts (the consensus, second opinions) are asked for the code alone (crew/run/drafter.py:
LEAN_NOTE): docstrings and comments were 46 % of what its attempts decoded on the eighth session's 46 dev tasks
(the note drops the comments; the 0.5B model mostly keeps copying the docstrings). An attempt that leaves them
out and is delivered still carries the docstrings the task gave: they are put back here, from the task's own
code block, text unchanged, indented where the attempt's body is.
"""

from __future__ import annotations

import ast

from crew.answers.answers import task_code_blocks

_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def task_docstrings(task: str) -> dict[str, str]:
    """Qualified name (`f`, `Cls`, `Cls.m`) -> the docstring's source as the task writes it, quotes included,
    with the indentation of its continuation lines made relative (no leading indent)."""
    out: dict[str, str] = {}
    for code in task_code_blocks(task):
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            continue
        lines = code.splitlines()
        for name, node in _defs(tree):
            doc = _docstring_expr(node)
            if doc is None or doc.end_lineno is None or name in out:
                continue
            first = lines[doc.lineno - 1][doc.col_offset:]
            rest = lines[doc.lineno:doc.end_lineno]
            out[name] = "\n".join([first, *(_dedent(line, doc.col_offset) for line in rest)])
    return out


def with_task_docstrings(source: str, task: str) -> tuple[str, list[str]]:
    """The module with each function, class and method that has no docstring given the task's one (same
    qualified name); the names given one. Unchanged when nothing is missing, or when the result would not
    parse (a body on the `def` line, a string the task quotes oddly)."""
    docs = task_docstrings(task)
    if not docs:
        return source, []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source, []
    lines = source.splitlines(keepends=True)
    inserts: list[tuple[int, str, str]] = []  # (line index, text, name)
    for name, node in _defs(tree):
        if name not in docs or _docstring_expr(node) is not None or not node.body:
            continue
        body = node.body[0]
        if body.lineno <= node.lineno or body.lineno - 1 >= len(lines):  # a body on the `def` line
            continue
        indent = lines[body.lineno - 1][:body.col_offset]
        if indent.strip():
            continue
        text = "\n".join(indent + line if line else "" for line in docs[name].split("\n"))
        inserts.append((_first_line(body) - 1, text + "\n", name))
    if not inserts:
        return source, []
    for at, text, _ in sorted(inserts, reverse=True):
        lines.insert(at, text)
    out = "".join(lines)
    try:
        ast.parse(out)
    except (SyntaxError, ValueError):
        return source, []
    return out, sorted(name for _, _, name in inserts)


def _defs(tree: ast.Module) -> list[tuple[str, _Def]]:
    """Top-level functions and classes, and the methods of top-level classes, by qualified name."""
    out: list[tuple[str, _Def]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            out.append((node.name, node))
            out += [(f"{node.name}.{m.name}", m) for m in node.body
                    if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
    return out


def _docstring_expr(node: _Def) -> ast.Constant | None:
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.value
    return None


def _first_line(stmt: ast.stmt) -> int:
    """Where a statement begins, decorators included (a method body that starts with a decorated def)."""
    decorators: list[ast.expr] = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno, *(d.lineno for d in decorators)])


def _dedent(line: str, by: int) -> str:
    head = line[:by]
    return line[by:] if not head.strip() else line.lstrip()
