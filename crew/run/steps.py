"""The workflow in one table: each CrewAI task, who does it, what it may change, and its retry budgets.

Reading this file tells the order of the run and every bound on it. A budget is the number of times a
step's guardrail may send the task back to its agent ("asked again"); CrewAI's own cap on guardrail retries
(`guardrail_max_retries`) is derived from the same numbers, one above them, so CrewAI never gives up first
(it raises when it runs out). Loops that do not go through CrewAI are bounded here too: implement's
attempts asked of the developer's model directly, the fix rounds, the independent attempts of the consensus
and of the second opinions. The knobs come from tasks.yaml's `workflow:` (crew/config/tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Knobs:
    """The `workflow:` keys the budgets depend on."""

    implement_rounds: int
    max_fix_rounds: int
    second_opinions: int
    consensus_samples: int
    consensus_tiebreak: int = 0  # more attempts on an even split on other calls, or a code no attempt reproduces
    samples_at_once: int = 4  # independent attempts in flight together (the developer's server slots)
    assumed_examples: int = 0  # examples the manager assumes when the task states none (crew/run/assumed.py)
    class_by_method: bool = False  # implement's third attempt: a class skeleton method by method (by_method.py)
    samples_ahead: bool = True  # the consensus's attempts asked once specify is done (attempts.send_ahead)
    lean_samples: bool = True  # independent attempts asked for the code alone (drafter.LEAN_NOTE)


@dataclass(frozen=True)
class Budget:
    """One named bound of a step: how many times `what` may happen."""

    key: str
    times: int
    what: str


@dataclass(frozen=True)
class Step:
    task: str                      # the CrewAI task (tasks.yaml)
    agent: str
    changes: tuple[str, ...]       # what its guardrail may write: "module", "tests", "docs", or nothing
    asks_again: tuple[Budget, ...]  # the reasons its guardrail may send the task back, each bounded
    loops: tuple[Budget, ...] = ()  # bounded work inside the step that does not go through CrewAI

    @property
    def crewai_retries(self) -> int:
        """CrewAI's cap on this task's guardrail retries: one above ours, so ours always decide."""
        return sum(b.times for b in self.asks_again) + 1

    def budget(self, key: str) -> int:
        return next(b.times for b in (*self.asks_again, *self.loops) if b.key == key)


# Extra independent attempts asked when some fail the user's examples and so have no vote (second_opinion.py).
EXTRA_VOTER_ATTEMPTS = 2
# Attempts an assumed example is checked against (the code and the consensus's samples count): at least this many.
ASSUMED_ATTEMPTS = 3


def steps(k: Knobs) -> tuple[Step, ...]:
    """The run, in order (CrewAI's sequential process runs them so; fix_code only when tests failed)."""
    return (
        # an unusable spec is replaced by the task text, never re-asked; beside it, when the task states no
        # example, one request for the examples the crew assumes (answered while the developer implements)
        Step("specify", "manager", (), (),
             # two: a second when the first answer holds no example (the 0.5B manager wrote code instead)
             (Budget("assumed_request", 2 if k.assumed_examples else 0, "requests for assumed examples"),)),
        Step("implement", "developer", ("module",),
             # through CrewAI only when the model cannot be asked directly (a replay without a drafter)
             (Budget("implement", k.implement_rounds - 1, "an attempt that fails the user's examples"),),
             (Budget("attempts", k.implement_rounds, "attempts at the module against the user's examples"),)),
        Step("write_tests", "tester", ("tests", "module"),
             (Budget("write_tests", 2, "an answer without a test file"),
              Budget("test_problems", 1, "a test file that does not parse, copies the code or tests nothing")),
             (Budget("consensus", k.consensus_samples, "independent attempts compared on the tests' calls"),
              Budget("consensus_tiebreak", k.consensus_tiebreak if k.consensus_samples else 0,
                     "attempts more, when attempts alike on the tests split evenly on calls no test makes, "
                     "or none behaves like the chosen one"),
              Budget("second_opinions", k.second_opinions, "voters when only model-written tests fail"),
              Budget("extra_voter_attempts", EXTRA_VOTER_ATTEMPTS, "attempts beyond the voters, for voters"),
              # crew/run/assumed.py: attempts asked only when fewer are at hand to check the assumed examples
              Budget("assumed_attempts", ASSUMED_ATTEMPTS if k.assumed_examples else 0,
                     "attempts to check the assumed examples against"))),
        Step("fix_code", "developer", ("module",),
             (Budget("fix_rounds", k.max_fix_rounds, "a fix round whose tests still fail"),)),
        Step("document", "documentation", ("docs",), (),
             # crew/run/verdict.py MIN_ATTEMPTS: only when the verdict would rest on model-written tests
             (Budget("verdict_attempts", 2, "independent attempts for the verdict, when fewer are at hand"),)),
        Step("report", "manager", (), ()),
    )


def step(k: Knobs, task: str) -> Step:
    return next(s for s in steps(k) if s.task == task)
