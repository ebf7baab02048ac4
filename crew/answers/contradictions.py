"""Model-written tests that contradict the user's examples, and cutting test functions out of a file.

A model-written test that asserts another result for a call the user gave an example of is dropped (the
user's words are the ground truth: crew/answers/examples.py); a test judged wrong by independent attempts is
cut out the same way (crew/run/second_opinion.py). Pure and `ast`-only: test sources are parsed, never run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from crew.answers.examples import Example

_MAX_SOURCE_CHARS = 200_000    # model-written test files beyond this are not parsed for contradictions


@dataclass(frozen=True)
class Contradiction:
    test: str        # the model-written test function
    call: str
    asserted: str    # what the model's test expects
    expected: str    # what the user's example says


def contradictions(test_source: str, examples: list[Example]) -> list[Contradiction]:
    """Model-written tests that assert another result for a call the user gave an example of."""
    if len(test_source) > _MAX_SOURCE_CHARS:
        return []
    try:
        tree = ast.parse(test_source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    said = {e.call: e for e in examples if e.kind == "equals" and not e.setup}  # a session's call needs its object
    out = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or not fn.name.startswith("test"):
            continue
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
                    and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq)):
                continue
            for call, value in ((node.test.left, node.test.comparators[0]),
                                (node.test.comparators[0], node.test.left)):
                ex = said.get(ast.unparse(call)) if isinstance(call, ast.Call) else None
                if ex is None:
                    continue
                try:
                    differs = ast.literal_eval(value) != ast.literal_eval(ex.expected)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue  # not a literal: cannot tell
                if differs:
                    out.append(Contradiction(test=fn.name, call=ex.call, asserted=ast.unparse(value),
                                             expected=ex.expected))
                break
    return out


def drop_functions(source: str, names: set[str]) -> str:
    """The source without the named top-level functions (decorators included)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    cut: set[int] = set()
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and fn.name in names and fn.end_lineno:
            first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
            cut.update(range(first - 1, fn.end_lineno))
    return "".join(line for i, line in enumerate(lines) if i not in cut)


def duplicate_tests(source: str) -> set[str]:
    """Test functions whose body repeats an earlier test's, statement for statement (the 0.5B tester wrote
    `assert change_base(10, 10) == '10'` eleven times, HumanEval/44): one copy is kept. Pure; a file that
    does not parse has none."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    seen: set[str] = set()
    dupes: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            body = "\n".join(ast.dump(stmt) for stmt in node.body)
            if body in seen:
                dupes.add(node.name)
            seen.add(body)
    return dupes
