"""An attempt that is complete while it still streams: its module's code block has closed. Pure.

An attempt at the module is asked for "the complete Python module in one ```python code block" (crew/run/
drafter.py), and the system takes that block and nothing else; the 0.5B model often goes on after it closes —
an explanation, a usage example, asserts: 8 % of the characters of the 249 developer answers of the eighth
session's 46 dev tasks, decoded on a machine where decoding is the run's whole cost. The request is ended where
the block closes, once the block parses and defines every function and class the task names (any function or
class when the task names none): a block that does not yet (a usage example first, a fence inside a docstring)
is not the end.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

_OPENERS = ("", "python", "py", "python3")
_MAX_CANDIDATES = 16  # closing fences tried per answer: a check's cost stays bounded


def module_end(text: str, names: Iterable[str]) -> int | None:
    """Where the first code block that holds the module ends (just past its closing fence's line end), or
    None while there is none. Only whole lines count: a fence still streaming is not yet a fence."""
    wanted = set(names)
    lines = text.split("\n")[:-1]  # the last piece has no line end yet
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    tried = 0
    for i, line in enumerate(lines):
        if not _opens(line):
            continue
        for j in range(i + 1, len(lines)):
            if lines[j].strip() != "```":
                continue
            tried += 1
            if _holds_module("\n".join(lines[i + 1:j]), wanted):
                return offsets[j] + len(lines[j]) + 1
            if tried >= _MAX_CANDIDATES:
                return None
    return None


def _opens(line: str) -> bool:
    s = line.strip()
    return s.startswith("```") and s[3:].strip().lower() in _OPENERS


def _holds_module(source: str, wanted: set[str]) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    return wanted <= defined if wanted else bool(defined)
