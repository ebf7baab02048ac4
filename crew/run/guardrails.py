"""The five guardrails of one run, bound to its state, for CrewAI's tasks (crew/run/crew.py).

The guard logic lives in handlers.py, attempts.py and second_opinion.py, which all act on a RunState; this
module only binds them, so that state.py imports none of them (no import cycle).
"""

# No `from __future__ import annotations` here: CrewAI inspects the guardrails' return annotations at
# runtime and accepts only a real tuple[bool, Any].
from collections.abc import Callable
from typing import Any

from crew.run import handlers
from crew.run.attempts import implement
from crew.run.state import RunState

Guardrail = Callable[[Any], tuple[bool, Any]]


def guardrails(state: RunState) -> dict[str, Guardrail]:
    """Task name → its guardrail for this run."""

    def spec(output: Any) -> tuple[bool, Any]:
        return handlers.spec(state, output)

    def implement_guard(output: Any) -> tuple[bool, Any]:
        return implement(state, output)

    def tests(output: Any) -> tuple[bool, Any]:
        return handlers.tests(state, output)

    def fix(output: Any) -> tuple[bool, Any]:
        return handlers.fix(state, output)

    def docs(output: Any) -> tuple[bool, Any]:
        return handlers.docs(state, output)

    return {"specify": spec, "implement": implement_guard, "write_tests": tests, "fix_code": fix,
            "document": docs}
