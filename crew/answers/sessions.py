"""A class's examples: doctest sessions on an instance, each stated result one example with its set-up.

A task that asks for a class states its examples per method, on an object built first:

    >>> account = BankAccount()
    >>> account.deposit(1000)
    1000
    >>> account.withdraw(200)
    800

The result of `withdraw` depends on the calls before it, so each stated result becomes one example whose
set-up is every statement of the session before it (the calls whose results were shown included: they
change the object). One docstring is one session, as in doctest.

Only what can be checked without guessing: statements and calls that use the task's classes, names bound
earlier in the session, literals and a few harmless builtins (a session that needs `datetime` or a file is
left out), results that are Python literals. Pure and `ast`-only, like examples.py: nothing is executed.
"""

from __future__ import annotations

import ast
import re

from crew.answers.examples import Example
from crew.answers.prose_sessions import prose_sessions

_MAX_TEXT_CHARS = 100_000
_MAX_SETUP = 12          # statements before a stated result; a longer session is not an example
_MAX_EXAMPLES = 40
_MAX_LINE_CHARS = 600
_SAFE_NAMES = frozenset({"True", "False", "None", "len", "sorted", "list", "dict", "set", "tuple", "str", "int",
                         "float", "round", "abs", "min", "max", "sum", "bool"})
_EXCEPTION_LINE = re.compile(r"Traceback|[A-Z]\w*(?:Error|Exception)\b")


# A call that reads or writes a file the task names: the file is not in the workspace, so the example would
# fail whatever the code (ClassEval/26, /84: `read_csv('read_test.csv')`).
_FILE_NAME = re.compile(r"\.(csv|json|txt|db|sqlite|xml|xlsx?|docx?|log|ini|ya?ml|pdf|png|jpe?g)$", re.IGNORECASE)
_STATIC = re.compile(r"@(?:staticmethod|classmethod)\s*\n\s*def\s+([A-Za-z_]\w*)")


def session_examples(task: str, classes: list[str]) -> list[Example]:
    """Every stated result of a method call in the task's doctest sessions, with the session before it."""
    if not classes:
        return []
    known = set(classes)
    static = set(_STATIC.findall(task[:_MAX_TEXT_CHARS]))
    out: dict[tuple[tuple[str, ...], str], Example] = {}
    text = task[:_MAX_TEXT_CHARS]
    for session in [*_sessions(text), *prose_sessions(text, classes)]:  # doctests, then sentences
        setup: list[str] = []
        bound: set[str] = set()
        for stmt, shown in session:
            node = _parse(stmt)
            if node is None or not _uses_only(node, known | bound) or _names_a_file(node):
                break  # an unknown name or a file from here on: the rest of the session cannot be rebuilt
            if shown is not None and _EXCEPTION_LINE.match(shown):
                break  # the call raised: what follows depends on a traceback we do not model
            expr = node.body[0].value if len(node.body) == 1 and isinstance(node.body[0], ast.Expr) else None
            expected = _literal(shown) if shown is not None else None
            on_instance = len(setup) <= _MAX_SETUP and any(_creates(s, known) for s in setup)
            # A method called on the class itself only where the task declares it static: a doctest that calls
            # an instance method on the class (ClassEval/62) states what the code cannot do.
            if expr is not None and expected is not None and _is_method_call(expr, known, bound) \
                    and (on_instance or _is_static_call(expr, known) and _method(expr) in static):
                call = ast.unparse(expr)
                out.setdefault((tuple(setup), call), Example(
                    call=call, function=_class_of(setup, expr, known), expected=expected, kind="equals",
                    source=f">>> {stmt.strip()} → {shown}"[:200], setup=tuple(setup)))
                if len(out) >= _MAX_EXAMPLES:
                    return list(out.values())
            bound.update(_assigned(node))
            if not _is_bare_name(node):  # `>>> account` only shows the object; calls and assignments act
                setup.append(ast.unparse(node))
    return list(out.values())


def _sessions(text: str) -> list[list[tuple[str, str | None]]]:
    """Each docstring's `>>>` statements, with the line shown after each (None when none is)."""
    sessions: list[list[tuple[str, str | None]]] = []
    current: list[tuple[str, str | None]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if '"""' in s or "'''" in s or s.startswith(("def ", "class ", "```")):
            if current:
                sessions.append(current)
            current = []
        if s.startswith(">>> ") and len(s) <= _MAX_LINE_CHARS:
            stmt = s[4:]
            while i + 1 < len(lines) and lines[i + 1].strip().startswith("... "):
                i += 1
                stmt += "\n" + lines[i].strip()[4:]
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            shown = nxt if nxt and not nxt.startswith(">>>") and '"""' not in nxt and "'''" not in nxt else None
            current.append((stmt, shown))
        i += 1
    if current:
        sessions.append(current)
    return sessions


def _parse(src: str) -> ast.Module | None:
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    allowed = (ast.Expr, ast.Assign, ast.AugAssign)
    return tree if len(tree.body) == 1 and isinstance(tree.body[0], allowed) else None


def _uses_only(tree: ast.Module, names: set[str]) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in names | _SAFE_NAMES:
            return False
        if isinstance(n, ast.Attribute) and n.attr.startswith("__"):
            return False
        if isinstance(n, ast.Lambda | ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
            return False
    return True


def _assigned(tree: ast.Module) -> list[str]:
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    return []


def _is_bare_name(tree: ast.Module) -> bool:
    stmt = tree.body[0]
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Name | ast.Attribute | ast.Constant)


def _is_method_call(expr: ast.expr, classes: set[str], bound: set[str]) -> bool:
    """`obj.method(...)` on a name bound in the session, `Cls(...).method(...)`, or `Cls.method(...)`."""
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)):
        return False
    owner = expr.func.value
    if isinstance(owner, ast.Name):
        return owner.id in bound or owner.id in classes
    return isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id in classes


def _is_static_call(expr: ast.expr, classes: set[str]) -> bool:
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
            and (isinstance(expr.func.value, ast.Name) and expr.func.value.id in classes
                 or isinstance(expr.func.value, ast.Call) and isinstance(expr.func.value.func, ast.Name)
                 and expr.func.value.func.id in classes))


def _method(expr: ast.expr) -> str:
    return expr.func.attr if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) else ""


def _names_a_file(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and _FILE_NAME.search(n.value.strip())
               for n in ast.walk(tree))


def _creates(stmt: str, classes: set[str]) -> bool:
    tree = _parse(stmt)
    return tree is not None and any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in classes
                                    for n in ast.walk(tree))


def _class_of(setup: list[str], expr: ast.expr, classes: set[str]) -> str:
    """The class the example exercises: the one its set-up or call constructs (the test file imports it)."""
    for src in [*setup, ast.unparse(expr)]:
        tree = _parse(src)
        for n in ast.walk(tree) if tree is not None else ():
            if isinstance(n, ast.Name) and n.id in classes:
                return n.id
    return sorted(classes)[0]


def _literal(shown: str) -> str | None:
    src = shown.strip()
    if "\\" in src:
        return None  # escapes inside a docstring's doctest are read twice (ClassEval/72): which one is meant?
    try:
        node = ast.parse(src, mode="eval").body
        ast.literal_eval(node)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return ast.unparse(node)
