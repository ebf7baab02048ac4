"""The task as prose, for the agents that must not copy code: the manager and the tester.

A task that shows a signature and docstring in a code block (HumanEval's shape, and how many users paste a
stub) is what a developer should see. But shown that block, the 0.5B tester pasted it back as its "test
file" (a copy of the function, no test) on every HumanEval task of the first tuning run, and the manager
answered with code instead of a specification. So those two see each function as one line of prose — its
signature, its docstring, and its doctests turned into `call == value` statements — and no code block.

Pure: text in, text out. The task is the user's text, parsed only with `ast` under a size cap; a block that
does not parse is left as it was.
"""

from __future__ import annotations

import ast
import re

_MAX_CHARS = 100_000
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def task_as_prose(task: str) -> str:
    """The task with every fenced Python block that defines functions described in words instead."""
    if len(task) > _MAX_CHARS:
        return task
    return _FENCE.sub(lambda m: _describe(m.group(1)) or m.group(0), task).strip()


def _describe(code: str) -> str | None:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    if not defs:
        return None
    out = []
    for node in defs:
        if isinstance(node, ast.ClassDef):
            out.append(_class_as_prose(node))
        else:
            out.append(f"The function {_function_as_prose(node)}")
    return "\n\n".join(out)


def _function_as_prose(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    signature = f"{fn.name}({ast.unparse(fn.args)})" + (f" -> {ast.unparse(fn.returns)}" if fn.returns else "")
    doc = ast.get_docstring(fn) or ""
    return f"`{signature}`." + (f" {_doc_as_prose(doc)}" if doc else "")


def _class_as_prose(cls: ast.ClassDef) -> str:
    """A class skeleton as words: the class, then each method on a line of its own (ClassEval's shape)."""
    bases = f"({', '.join(ast.unparse(b) for b in cls.bases)})" if cls.bases else ""
    doc = ast.get_docstring(cls) or ""
    lines = [f"The class `{cls.name}{bases}`." + (f" {_doc_as_prose(doc)}" if doc else "")]
    methods = [n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if methods:
        lines.append(f"Its methods (each test builds a new `{cls.name}` object and calls them on it):")
        lines += [f"- {_function_as_prose(m)}" for m in methods]
    return "\n".join(lines)


def _doc_as_prose(doc: str) -> str:
    """Docstring text as sentences; each doctest (`>>> call` and the line after it) as `call == value`."""
    lines = [ln.strip() for ln in doc.splitlines()]
    words: list[str] = []
    examples: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(">>>"):
            call = line[3:].strip()
            result = lines[i + 1] if i + 1 < len(lines) and lines[i + 1] and not lines[i + 1].startswith(">>>") \
                else ""
            examples.append(f"{call} == {result}" if result else call)
            i += 2 if result else 1
            continue
        if line:
            words.append(line)
        i += 1
    text = " ".join(words)
    if examples:
        text += (" " if text else "") + "Examples: " + "; ".join(f"`{e}`" for e in examples) + "."
    return text


# ------------------------------------------------------------------------------------------ the developer's view

_CLASS_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def task_for_developer(task: str) -> str:
    """A task with a class skeleton, as the developer sees it: each method in words (its docstring, its
    examples as `call == value`), then the skeleton without docstrings to fill in. Shown the docstrings, the
    0.5B developer copied them back and looped inside a doctest until its token limit (ClassEval/4 at 21d20f0:
    2048 tokens of `>>> system.add_course_score('student 1', 'Computer Network', 1xx)`, no module, twice).
    Any other task is shown as the user wrote it."""
    if len(task) > _MAX_CHARS:
        return task
    changed = False

    def rewrite(m: re.Match[str]) -> str:
        nonlocal changed
        bare = _bare_skeleton(m.group(1))
        if bare is None:
            return m.group(0)
        changed = True
        words = _describe(m.group(1)) or ""
        return f"{words}\n\nThe skeleton to complete (keep every name and parameter):\n\n```python\n{bare}\n```"

    out = _CLASS_FENCE.sub(rewrite, task)
    return out.strip() if changed else task


def _bare_skeleton(code: str) -> str | None:
    """The code with every docstring of its classes and their methods taken out; None when it holds no class."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not any(isinstance(n, ast.ClassDef) for n in tree.body):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    try:
        return ast.unparse(tree)
    except (ValueError, RecursionError):
        return None
