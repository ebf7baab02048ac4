"""The user's examples as acceptance tests, written by the system — never by a model.

A task that says `to_roman(1994) == 'MCMXCIV'`, `f(x) -> y`, "slugify('A b') returns 'a-b'" or holds a doctest
(`>>> f(2)` followed by `4`) states ground truth. Each such example becomes one test in `test_examples.py`;
a model-written test that asserts something else for the same call contradicts the user and is dropped.

Pure: text in, text and frozen records out. Model-written text is parsed only here and only with `ast`
(never executed), under a size cap, and every parser failure means "no example", never an exception.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

EXAMPLES_FILE = "test_examples.py"
_MAX_TASK_CHARS = 100_000      # longer task texts are not searched for examples (they are not prose)
_MAX_EXAMPLES = 40
_MAX_VALUE_CHARS = 400
_DEF = re.compile(r"\bdef\s+([A-Za-z_]\w*)\s*\(")
# An inline code span that opens with a call: `name(…`. Spans are paired left to right, so the closing
# backtick of "`capacity` items (a positive integer)" never opens one ("items" is no call).
_CALL_IN_TICKS = re.compile(r"`(?:\s*([A-Za-z_]\w*)\s*\()?[^`\n]*`")
# `class Stack:` / `class Stack(Base)` in code, "class `Stack`" or "class Stack" (a capitalised name) in prose;
# not "the class name" or "a class that".
# "class `Account`", "class `BoundedQueue(capacity)`" (its constructor's parameters), "class Account:", "class Foo"
_CLASS = re.compile(r"\bclass\s+(?:`([A-Za-z_]\w*)(?:\([^`()]*\))?`|([A-Za-z_]\w*)\s*[:(]|([A-Z]\w*))")
_METHOD = re.compile(r"^[ \t]+def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
# What may stand between a call and the value it is said to give.
_ARROW = re.compile(r"\s*`?\s*#?\s*(==>|==|=>|->|➞|→|=|\bshould\s+return\b|\breturns?\b|\bgives?\b|\bis\b)\s*`?\s*")
_RAISES = re.compile(r"\s*`?\s*(?:should\s+)?raises?\s+`?([A-Z]\w*(?:Error|Exception))\b")
_BUILTIN_EXCEPTIONS = frozenset(n for n in dir(builtins) if n.endswith(("Error", "Exception")))


@dataclass(frozen=True)
class Example:
    call: str        # normalised source of the call, e.g. "to_roman(1994)"
    function: str    # the function it calls
    expected: str    # normalised source of the expected value, or of the exception class for `raises`
    kind: str        # "equals" | "raises"
    source: str      # the user's own words it came from (one line, trimmed)
    # Statements run before the call, in order: a class's doctest session (crew/answers/sessions.py), e.g.
    # ("account = BankAccount()", "account.deposit(1000)") before `account.withdraw(200)`.
    setup: tuple[str, ...] = ()


def function_names(task: str) -> list[str]:
    """Functions the task names: `def name(` lines and `name(` in backticks, in order of appearance."""
    text = task[:_MAX_TASK_CHARS]
    found: list[str] = []
    calls = [m for m in _CALL_IN_TICKS.finditer(text) if m.group(1)]
    for m in sorted([*_DEF.finditer(text), *calls], key=lambda m: m.start()):
        if m.group(1) not in found:
            found.append(m.group(1))
    return found


def class_names(task: str) -> list[str]:
    return list(dict.fromkeys(next(g for g in m if g) for m in _CLASS.findall(task[:_MAX_TASK_CHARS])))


def method_names(task: str) -> list[str]:
    """Names defined by an indented `def` in the task's code (a class's methods): called on an instance,
    never on their own, so never the subject of a plain `name(args)` example."""
    return list(dict.fromkeys(_METHOD.findall(task[:_MAX_TASK_CHARS])))


_FUNCTION_WORD = re.compile(r"\bfunctions?\b[^.;:`]*$", re.IGNORECASE)


def prose_methods(task: str, classes: list[str]) -> list[str]:
    """A class described in words (no skeleton): the backticked calls that are its methods — called on an
    object somewhere (`.push(`), or named after the class without the word "function" before them in their
    sentence. Taken for functions, `s.get_min() == 1` became `from minstack import get_min` and every
    example failed at import (own/stack)."""
    text = task[:_MAX_TASK_CHARS]
    starts = [m.start() for m in _CLASS.finditer(text)]
    if not classes or not starts:
        return []
    out: list[str] = []
    for m in _CALL_IN_TICKS.finditer(text):
        name = m.group(1)
        if not name or name in classes or name in out:
            continue
        on_object = re.search(rf"\.{re.escape(name)}\s*\(", text) is not None
        before = text[max(0, m.start() - 80):m.start()]
        if on_object or (m.start() > starts[0] and not _FUNCTION_WORD.search(before)):
            out.append(name)
    return out


def extract_examples(task: str, names: list[str] | None = None) -> list[Example]:
    """Every call of a named function with a stated result, doctests first, without duplicates."""
    text = task[:_MAX_TASK_CHARS]
    known = set(names if names is not None else function_names(text))
    if not known:
        return []
    found: dict[str, Example] = {}
    for ex in [*_doctests(text, known), *_inline(text, known), *_stated_io(text, known)]:
        found.setdefault(ex.call, ex)  # the first statement of a call wins; later restatements are ignored
        if len(found) >= _MAX_EXAMPLES:
            break
    return list(found.values())


def _doctests(text: str, known: set[str]) -> list[Example]:
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith(">>> "):
            continue
        call = _call_of(stripped[4:].strip(), known) or _wrapped_call(stripped[4:].strip(), known)
        if call is None or i + 1 >= len(lines):
            continue
        want = lines[i + 1].strip()
        if not want or want.startswith(">>>"):
            continue
        if re.match(r"Traceback|[A-Z]\w*(?:Error|Exception)\b", want):
            continue  # a traceback's exception is on a later line; not worth guessing
        value = _literal(want)
        if value is not None:
            out.append(Example(call=call[0], function=call[1], expected=value, kind="equals",
                               source=f">>> {stripped[4:].strip()} → {want}"[:200]))
    return out


def _inline(text: str, known: set[str]) -> list[Example]:
    out = []
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, known))) + r")\s*\(")
    for m in pattern.finditer(text):
        if text[max(0, m.start() - 4):m.start()].rstrip().endswith((">>>", "def")):
            continue
        end = _closing_paren(text, m.end() - 1)
        if end is None:
            continue
        call = _call_of(text[m.start():end + 1], known)
        if call is None:
            continue
        rest = text[end + 1:end + 1 + _MAX_VALUE_CHARS + 40]
        line_of = text[text.rfind("\n", 0, m.start()) + 1:]
        source = line_of.split("\n", 1)[0].strip()[:200]
        if r := _RAISES.match(rest):
            if r.group(1) in _BUILTIN_EXCEPTIONS:
                out.append(Example(call=call[0], function=call[1], expected=r.group(1), kind="raises",
                                   source=source))
            continue
        a = _ARROW.match(rest)
        if a is None:
            continue
        value = _longest_literal(rest[a.end():])
        if value is not None:
            out.append(Example(call=call[0], function=call[1], expected=value, kind="equals", source=source))
    return out


# "Input: [5, 0, 3]" then "Output: [0, 1]" (a problem statement's examples), and "For num = "AB" the output
# should be 1." Neither names the function, so they are taken only when the task names exactly one.
_INPUT = re.compile(r"^\s*Input\s*:\s*(?P<args>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_OUTPUT = re.compile(r"^\s*Output\s*:\s*(?P<value>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_FOR = re.compile(r"\bFor\s+(?P<args>[A-Za-z_]\w*\s*=.+?),?\s+the\s+output\s+should\s+be\s+(?P<value>.+?)\s*$",
                  re.IGNORECASE | re.MULTILINE)
_SAFE_WRAPPERS = frozenset({"round", "sorted", "len", "abs", "list", "tuple", "set", "str", "int", "float", "sum",
                            "min", "max", "bool"})
_WRAPPED_NODES = (ast.Call, ast.Name, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.USub,
                  ast.UAdd, ast.expr_context)


def _stated_io(text: str, known: set[str]) -> list[Example]:
    if len(known) != 1:
        return []
    (name,) = known
    params = _parameters(text, name)
    out = []
    for m in _INPUT.finditer(text):
        nxt = _OUTPUT.search(text, m.end(), m.end() + 300)
        if nxt is None or _INPUT.search(text, m.end(), nxt.start()):
            continue  # an Input without its own Output
        ex = _io_example(name, params, m.group("args"), nxt.group("value"),
                         f"Input: {m.group('args')} Output: {nxt.group('value')}")
        if ex:
            out.append(ex)
    for m in _FOR.finditer(text):
        ex = _io_example(name, params, m.group("args"), m.group("value"), m.group(0).strip())
        if ex:
            out.append(ex)
    return out


def _io_example(name: str, params: list[str] | None, args: str, value: str, source: str) -> Example | None:
    """`f(<literal>)` for one literal input, or `f(a=<literal>, …)` when every name is a parameter of f."""
    expected = _literal(value.strip().strip("`"))
    if expected is None:
        return None
    args = args.strip().rstrip(",").strip("`")
    if re.match(r"[A-Za-z_]\w*\s*=[^=]", args):
        if params is None:
            return None
        call = _call_of(f"{name}({args})", {name})
        node = _parse_expr(call[0]) if call else None
        if not isinstance(node, ast.Call) or node.args or not {k.arg for k in node.keywords} <= set(params):
            return None
    else:
        if params is not None and len(params) != 1:
            return None
        call = _call_of(f"{name}({args})", {name})
        node = _parse_expr(call[0]) if call else None
        if not isinstance(node, ast.Call) or len(node.args) != 1:
            return None  # "Input: 1, 2" could be one tuple or two arguments: not guessed
    assert call is not None
    return Example(call=call[0], function=name, expected=expected, kind="equals", source=source[:200])


def _parameters(text: str, name: str) -> list[str] | None:
    m = re.search(r"\bdef\s+" + re.escape(name) + r"\s*\((?P<params>[^)]*)\)", text)
    if m is None:
        return None
    try:
        fn = ast.parse(f"def {name}({m.group('params')}): pass").body[0]
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    assert isinstance(fn, ast.FunctionDef)
    return [a.arg for a in fn.args.args]


def _wrapped_call(src: str, known: set[str]) -> tuple[str, str] | None:
    """`round(find_zero([1, 2]), 2)`: one call of a known function with literal arguments, inside calls of
    harmless builtins with literal arguments — a doctest that rounds or sorts the result."""
    node = _parse_expr(src)
    if node is None:
        return None
    inner: list[tuple[str, str]] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Name) and n.func.id in known:
                found = _call_of(ast.unparse(n), known)
                if found is None:
                    return None
                inner.append(found)
            elif not (isinstance(n.func, ast.Name) and n.func.id in _SAFE_WRAPPERS) or n.keywords:
                return None
        elif not isinstance(n, _WRAPPED_NODES) or (isinstance(n, ast.Name) and n.id not in known | _SAFE_WRAPPERS):
            return None
    if len(inner) != 1 or not isinstance(node, ast.Call):
        return None
    return ast.unparse(node), inner[0][1]


def _closing_paren(text: str, open_at: int) -> int | None:
    """Index of the `)` matching the `(` at open_at, skipping strings; None when unbalanced or too far."""
    depth, i, quote = 0, open_at, ""
    limit = min(len(text), open_at + 2000)
    while i < limit:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i if c == ")" else None
        elif c == "\n" and text[i + 1:i + 2] == "\n":
            return None  # a blank line: this was not one call
        i += 1
    return None


def _call_of(src: str, known: set[str]) -> tuple[str, str] | None:
    """(normalised call, function) when src is exactly `name(literal, ..., key=literal)` of a known name."""
    node = _parse_expr(src)
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.func.id not in known:
        return None
    args = [*node.args, *(k.value for k in node.keywords)]
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return None
    for a in args:
        try:
            ast.literal_eval(a)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return ast.unparse(node), node.func.id


_JSONISH = {"true": "True", "false": "False", "null": "None", "none": "None"}


def _literal(src: str) -> str | None:
    src = src.rstrip(".;,")
    src = _JSONISH.get(src.strip(), src)  # "f(1) => true": the user means Python's True
    node = _parse_expr(src)
    if node is None:
        return None
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return ast.unparse(node)


def _longest_literal(rest: str) -> str | None:
    """The longest prefix of `rest` (up to a sentence or clause break) that is a Python literal."""
    rest = rest[:_MAX_VALUE_CHARS]
    ends = sorted({m.start() for m in re.finditer(r"[\s`,.;:)\]}]|$", rest)} | {len(rest)}, reverse=True)
    for end in ends:
        for cut in (end, end + 1):
            piece = rest[:cut].strip().strip("`")
            if piece and (value := _literal(piece)) is not None:
                # "f(x) -> 19 - 5 - 6 = 8" (HumanEval/67): the literal 19 starts a calculation, it is not the
                # result; taken as ground truth it failed the correct code on every example. No example then.
                return None if _OPERATOR_NEXT.match(rest[cut:].split("\n", 1)[0]) else value
    return None


_OPERATOR_NEXT = re.compile(r"\s*[-+*/%@&|^<>=!]")


def _parse_expr(src: str) -> ast.expr | None:
    if len(src) > _MAX_VALUE_CHARS * 4:
        return None
    try:
        return ast.parse(src.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


# ------------------------------------------------------------------------------------------ tests

def render_tests(module_name: str, examples: list[Example], *, assumed: bool = False) -> str:
    """test_examples.py: one test per example, each naming the user's words it checks. `assumed`: the
    examples the crew assumed and its attempts confirmed (crew/answers/assumed.py), said so in the file."""
    functions = sorted({e.function for e in examples} | {n for e in examples for n in _free_names(e)})
    doc = ("Examples assumed by the crew (the task states none), kept because independent attempts agree "
           "with them (not the user's)." if assumed else
           "Acceptance tests written by localcrew from the examples in the task (not by a model).")
    origin = "assumed by the crew" if assumed else "from the task"
    lines = [
        f'"""{doc}"""',
        "",
        "import pytest",
        "",
        f"from {module_name} import {', '.join(functions)}",
        "",
    ]
    for i, e in enumerate(examples, 1):
        lines += ["", f"def test_example_{i}():", f"    # {origin}: {_comment(e.source)}"]
        lines += [f"    {line}" for stmt in e.setup for line in stmt.splitlines()]
        if e.kind == "raises":
            lines += [f"    with pytest.raises({e.expected}):", f"        {e.call}"]
        elif _has_float(e.expected):
            lines.append(f"    assert {e.call} == pytest.approx({e.expected})")
        else:
            lines.append(f"    assert {e.call} == {e.expected}")
    return "\n".join(lines) + "\n"


def _free_names(e: Example) -> set[str]:
    """The module's names an example's set-up and call use (the classes it builds), to import them."""
    if not e.setup:
        return set()
    bound: set[str] = set()
    used: set[str] = set()
    for src in [*e.setup, e.call]:
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        for n in ast.walk(tree):
            if isinstance(n, ast.Name):
                (bound if isinstance(n.ctx, ast.Store) else used).add(n.id)
    return {n for n in used - bound if n[:1].isupper() and n not in ("True", "False", "None")}


def _comment(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\")


def _has_float(expected: str) -> bool:
    """A float that pytest.approx can compare: a number, or a flat list/tuple of numbers (approx refuses
    nested structures: ClassEval/82's `(11500.0, [{...}])`)."""
    node = _parse_expr(expected)
    if node is None or not any(isinstance(n, ast.Constant) and isinstance(n.value, float) for n in ast.walk(node)):
        return False
    items = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
    return all(isinstance(i, ast.Constant) and isinstance(i.value, int | float) and not isinstance(i.value, bool)
               or isinstance(i, ast.UnaryOp) and isinstance(i.operand, ast.Constant) for i in items)
