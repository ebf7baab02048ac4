"""A class's examples told in prose: "after s = MinStack(); s.push(3); s.push(1): s.get_min() == 1".

Users describe a class's behaviour as a short session in a sentence rather than a doctest. Each such sentence
becomes one session in the form sessions.py reads doctests in — (statement, the value shown after it or
None) — so the same checks build the examples: only names the session binds, the task's classes and a few
builtins; literal results only.

Conservative on purpose: a wrong example makes the crew call correct code wrong. The sentence is cut into
pieces at `;`, `,`, `:` and "and"/"then" outside brackets and quotes; a piece must be a statement
(`s.push(3)`, `s = MinStack()`) or a claim about a call (`s.pop() == 2`, "`q.is_full()` is True",
"`q.pop()` returns 1"), with nothing but "after", "then", "and", "so" or "for example" before it. The first
piece that is neither ends the session: "after one more pop s.get_min() == 3" changes the object in words we
do not model, so nothing after it is an example. Pure: nothing is executed.
"""

from __future__ import annotations

import ast
import re

_MAX_SPAN_CHARS = 600
_MAX_SESSIONS = 20
_CONNECTORS = re.compile(r"^(?:(?:for example|for instance|e\.g\.|after|afterwards|then|and|so|now|while)\b[\s,]*)+",
                         re.IGNORECASE)
_CLAIM = re.compile(r"^(?P<call>.+?\))\s*(?:==|\bis\b|\breturns?\b|\bgives?\b|\bshould return\b|->|=>|→)\s*"
                    r"(?P<value>.+)$", re.DOTALL)
_SEPARATOR_WORDS = (" and ", " then ")


def prose_sessions(task: str, classes: list[str]) -> list[list[tuple[str, str | None]]]:
    """Each sentence that builds one of the task's classes (`name = Cls(...)`), as a session of pieces."""
    if not classes:
        return []
    text = task.replace("`", "")
    start = re.compile(r"\b[A-Za-z_]\w*\s*=\s*(?:" + "|".join(re.escape(c) for c in classes) + r")\s*\(")
    sessions: list[list[tuple[str, str | None]]] = []
    for m in start.finditer(text):
        span = _sentence(text, m.start())
        if ">>>" in span:
            continue  # a doctest: sessions.py reads it line by line
        session: list[tuple[str, str | None]] = []
        for piece in _pieces(span):
            step = _step(piece)
            if step is None:
                break
            session.append(step)
        if session:
            sessions.append(session)
        if len(sessions) >= _MAX_SESSIONS:
            break
    return sessions


def _sentence(text: str, start: int) -> str:
    """From `start` to the end of its sentence: a period before a space or the end, a blank line, or the cap."""
    end = min(len(text), start + _MAX_SPAN_CHARS)
    stop = re.compile(r"\.(?=\s|$)|\n\s*\n").search(text, start, end)
    return " ".join(text[start : stop.start() if stop else end].split())


def _pieces(span: str) -> list[str]:
    """`span` cut at `;`, `,`, `:` and " and "/" then " outside brackets and quotes."""
    pieces, depth, quote, current, i = [], 0, "", [], 0
    while i < len(span):
        ch = span[i]
        if quote:
            current.append(ch)
            if ch == quote and span[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch in "([{":
            depth += 1
            current.append(ch)
        elif ch in ")]}":
            depth -= 1
            current.append(ch)
        elif depth == 0 and ch in ";,:":
            pieces.append("".join(current))
            current = []
        elif depth == 0 and (word := next((w for w in _SEPARATOR_WORDS if span.startswith(w, i)), "")):
            pieces.append("".join(current))
            current = []
            i += len(word)
            continue
        else:
            current.append(ch)
        i += 1
    pieces.append("".join(current))
    return [p.strip() for p in pieces if p.strip()]


def _step(piece: str) -> tuple[str, str | None] | None:
    """One piece as (statement, value shown) — a claim about a call, or a statement — or None."""
    piece = _CONNECTORS.sub("", piece).strip()
    claim = _CLAIM.match(piece)
    if claim is not None and _is_call(claim.group("call")):
        value = claim.group("value").strip()
        return (claim.group("call").strip(), value) if _is_literal(value) else None
    return (piece, None) if _is_statement(piece) else None


def _is_call(src: str) -> bool:
    try:
        node = ast.parse(src.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return isinstance(node, ast.Call)


def _is_statement(src: str) -> bool:
    """A call, or an assignment of one (`s = MinStack()`): what a session does to its object."""
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    if len(tree.body) != 1:
        return False
    stmt = tree.body[0]
    value = stmt.value if isinstance(stmt, ast.Expr | ast.Assign) else None
    return isinstance(value, ast.Call)


def _is_literal(src: str) -> bool:
    try:
        ast.literal_eval(ast.parse(src, mode="eval").body)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return True
