"""Examples the crew assumes when the task states none: asked of the manager, kept only where attempts agree (pure).

A task without an example leaves every test model-written, and the tester's expected values are wrong often
enough to fail working code (issue #26: 19 of 27 tests of `primes.py` asserted `primes_up_to(1) == [2]`) or to
agree with code that misread the task. So, before any code exists, the manager's model writes a few concrete
calls with the value it expects, from the task text alone. They are the crew's reading of the task, not the
user's: they join the acceptance tests only where independent attempts at the code (written by another
prompt, from the same text) return the same value — two readings of the words that agree — and the report
lists them apart from the user's examples, with what the attempts returned where they did not agree.

Pure: the request's text, the answer parsed into examples, the agreement decided from per-attempt outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crew.answers.examples import Example, extract_examples

ASSUMED_FILE = "test_assumed_examples.py"
MIN_AGREEING = 2   # an assumed example joins the tests only when at least this many attempts return its value …
# … and more than half of the usable attempts do (a split vote is no confirmation)


def request(task: str, functions: list[str], n: int) -> str:
    """The manager's request: n calls with literal arguments and the value each returns, as asserts."""
    names = ", ".join(f"`{f}`" for f in functions)
    first = functions[0]
    return (f"{task.strip()}\n\nThe task above gives no example. Before anyone writes code, write {n} concrete "
            f"examples of what {names} must return, read from the task's words only: one ordinary case and "
            f"the edge cases the task mentions. Use literal values only. Answer with one ```python block "
            f"holding exactly {n} lines, each of the form\nassert {first}(<arguments>) == <the value it returns>")


AGAIN = ("That holds no example. Do not write the code. Answer only with the assert lines, each calling the "
         "function with literal values and comparing with the literal value it returns.")


def parse(answer: str, functions: list[str], n: int) -> list[Example]:
    """Up to n examples from the answer: calls of the task's functions with literal values, each call once.
    A call given two different values is dropped (the model disagrees with itself)."""
    # line by line: the parser keeps one value per call, and a call given two values must be seen twice
    found = [e for line in answer.splitlines() for e in extract_examples(line, functions)
             if e.kind == "equals" and not e.setup]
    seen: dict[str, Example] = {}
    conflicted: set[str] = set()
    for e in found:
        if e.call in seen and seen[e.call].expected != e.expected:
            conflicted.add(e.call)
        seen.setdefault(e.call, e)
    return [e for call, e in seen.items() if call not in conflicted][:n]


@dataclass(frozen=True)
class Check:
    """One assumed example against the attempts at hand."""

    example: Example
    agreeing: int                  # usable attempts whose call returns the assumed value
    attempts: int                  # usable attempts run
    returned: tuple[str, ...]      # what the attempts that disagree returned ("value …" / "raises …" / "?")

    @property
    def accepted(self) -> bool:
        return self.agreeing >= MIN_AGREEING and 2 * self.agreeing > self.attempts

    def line(self) -> str:
        head = f"`{self.example.call} == {self.example.expected}`"
        if self.accepted:
            return f"- {head}: {self.agreeing} of {self.attempts} attempts agree — joined the tests"
        if not self.attempts:
            return f"- {head}: no usable attempt to check it against — not used"
        others = "; ".join(sorted(set(self.returned)))[:200]
        return (f"- {head}: {self.agreeing} of {self.attempts} attempts agree — not used"
                + (f" (the others: {others})" if others else ""))


def check(example: Example, passed: list[bool], returned: list[str | None]) -> Check:
    """The agreement on one example: per usable attempt, whether its assert passed and what the call gave."""
    others = tuple(r or "?" for p, r in zip(passed, returned, strict=True) if not p)
    return Check(example=example, agreeing=sum(passed), attempts=len(passed), returned=others)


def report_lines(checks: list[Check], events: list[Any]) -> list[str]:
    """The report's account of the examples the crew assumed, kept or not — never called the user's. From the
    run's checks, or, for a resumed run that has lost them, from its journal."""
    if checks:
        kept = sum(1 for c in checks if c.accepted)
        head = (f"examples assumed by the crew (the manager's reading of the task, not the user's): {kept} of "
                f"{len(checks)} confirmed by independent attempts" + (f" → `{ASSUMED_FILE}`" if kept else ""))
        return [head] + [c.line()[2:] for c in checks]
    done = [e for e in events if e.event == "assumed_checked"]
    if not done:
        return []
    rec = done[-1]
    return [f"examples assumed by the crew (not the user's): {len(rec.accepted)} of {len(rec.calls)} "
            "confirmed by independent attempts" + (f" → `{rec.file}`" if rec.file else "")]
