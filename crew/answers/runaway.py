"""Answers that run away — repeating themselves, or writing check after check — found while they stream,
and what of them to keep. Pure.

A 0.5B model that loops writes the same lines again and again until its length limit: the tester's file for
HumanEval/53 (`add(x, y)`) was 8 tests and then `def test_add_9(): assert add(0, -2) == -2, "Test case 9
failed"` copied to test 26 — 1024 tokens, 49 s of the run's critical path on 2 cores, the same request that
answers in ~10 s when it does not loop. Nothing after the second copy is ever worth its tokens, so the
request is cut as soon as a block of lines has come back `_REPEATS` times in a row, and the answer keeps
what came before the copies (its code block closed again where it parses: codeblocks.cut_back).

Two lines are the same block when they are equal after two normalisations that only erase what a loop
changes from copy to copy: the number at the end of a test's name (`def test_add_12(`) and an assert's
message (`assert x == 1, "Test case 12 failed"`). Values are never erased: tests that check different
inputs are different lines, however alike. Only the tail is scanned (`_TAIL_LINES`), and lines longer than
`_LONG_LINE` are compared as they are (the two patterns are anchored to one line, but a lazy match over a
very long line is quadratic in it): a check's cost does not grow with the answer.

A tester that does not loop can still run away: 58 asserts of `encode_shift`, one letter of the alphabet
each (HumanEval/50, the answer cut by its 1024-token limit). Of 61 test files kept from past runs (one
assert a test, as the tester's handler splits them), 58 had at most 8; the other three had 15, 26 and 58,
all runaways (own/isbn: `'1234567890X1'`, `'1234567890X10'`, … one digit longer each). Past `MAX_CHECKS`
checks (`assert`, `self.assert…`, `pytest.raises`: room for a class's methods, a few each) the answer is
cut where the next one begins; cut_back keeps the lines before it that parse. Checks, not test functions:
the 0.5B tester often writes all its asserts in one function.
"""

from __future__ import annotations

import re

from crew.answers import codeblocks

_TAIL_LINES = 64       # non-blank lines looked at, from the end
_MAX_PERIOD = 8        # the longest block of lines a loop repeats (a test: def, setup, assert, …)
_REPEATS = 4           # a block of two lines or more seen this many times in a row is a loop
_REPEATS_ONE_LINE = 6  # a single line, this many times (six identical calls in a row: never a test's intent)

_LONG_LINE = 400       # characters; longer lines are not normalised

MAX_CHECKS = 16        # checks in one answer; the next one is not waited for

_CHECK = re.compile(r"^[ \t]*(?:assert\b|self\.assert|(?:with[ \t]+)?pytest\.raises)", re.MULTILINE)
_TEST_NUMBER = re.compile(r"^(\s*(?:async\s+)?def\s+test\w*?)_?\d+\s*\(")
_ASSERT_MESSAGE = re.compile(r"^(\s*assert\s.*?),\s*[rbfu]?(?:\"[^\"]*\"|'[^']*')\s*$")


def _normal(line: str) -> str:
    line = line.rstrip()
    if len(line) > _LONG_LINE:
        return line
    line = _TEST_NUMBER.sub(r"\1#(", line, count=1)
    return _ASSERT_MESSAGE.sub(r"\1, …", line, count=1)


def repeating_from(text: str) -> int | None:
    """Where the copies of a repeated block begin (the offset just after its first copy's last line), when
    the answer's tail is one block of lines repeated enough times in a row; None otherwise."""
    lines: list[tuple[int, str]] = []  # (offset just past the line, normalised line), non-blank, from the end
    end = len(text)
    if text.endswith("\n"):
        end -= 1
    while end > 0 and len(lines) < _TAIL_LINES:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if line.strip():
            lines.append((end, _normal(line)))
        end = start - 1
    lines.reverse()
    n = len(lines)
    for period in range(1, min(_MAX_PERIOD, n // 2) + 1):
        need = _REPEATS_ONE_LINE if period == 1 else _REPEATS
        if n < period * need:
            continue
        copies = 1
        while (copies + 1) * period <= n and all(
                lines[n - 1 - i][1] == lines[n - 1 - i - copies * period][1] for i in range(period)):
            copies += 1
        if copies >= need:
            first_copy_end = n - copies * period + period - 1  # the last line of the first copy
            return lines[first_copy_end][0]
    return None


def past_max_checks(text: str, limit: int = MAX_CHECKS) -> int | None:
    """Where the check after the `limit`-th begins (the start of its line), once the answer has begun it;
    None before."""
    for n, m in enumerate(_CHECK.finditer(text), 1):
        if n > limit:
            return m.start()
    return None


def runaway(text: str) -> tuple[int, str] | None:
    """Where to cut a streaming answer, and why (said in the run log); None while it is not running away.
    Meant to be asked each time a line ends."""
    at = repeating_from(text)
    if at is not None:
        return at, "it repeated the same lines"
    at = past_max_checks(text)
    if at is not None:
        return at, f"it went on past {MAX_CHECKS} checks"
    return None


def kept(text: str, cut_at: int) -> str:
    """The answer up to `cut_at`, its last code block closed again where it parses (as an answer cut off at
    its length limit is: codeblocks.cut_back); the plain prefix when nothing there parses."""
    head = text[:cut_at]
    return codeblocks.cut_back(head) or head
