"""How sure the verdict is: what the final tests rest on, and whether independent attempts agree with the code.

A plain PASS/FAIL hid what users need to know (issue #26, prose tasks the crew never saw): a FAIL on working
code because model-written tests carried wrong expected values (3 of 4 correct deliveries), and a PASS on
code that misread a task with no example, said in the same word as a PASS the user's own examples confirm.
So the verdict has a kind, from the strongest evidence the run has:

    pass-examples      every test passes, the user's own examples among them
    pass-model-tests   every test passes, but the task gave no example: only model-written tests, and how
                       many independent attempts also pass them
    pass-unsettled     every test passes, but attempts that behave like the code on every call the tests
                       make return something else on inputs no test tries (the consensus's variants,
                       crew/answers/probes.py), and no behaviour there holds a majority of them even after
                       the tie-break's attempts: the tests do not settle which is right — the report lists
                       those calls, for the user to check (HumanEval/20: a wrong delivery passed the user's
                       two examples, and so did a right attempt that the tests could not tell from it)
    pass-unreproduced  every test passes, but none of at least two other independent attempts behaves like
                       the code on the tests' calls (probes.alone), even after the tie-break's attempts: the
                       reading of the task is the code's alone — 3 of 5 such PASSes in past runs were
                       wrong, against 7 of 51 reproduced ones (own/isbn: the `X` check digit no example shows)
    pass-split         every test passes, but the usable attempts split on the tests' own calls: those that
                       behave like the code there are no more than half (probes.split); the report lists the
                       calls and what the others return (own/wordcount: words split on spaces or on runs
                       of letters; replayed on 75 kept runs, it marks 2 PASSes, both wrong, and none of the
                       46 right ones)
    fail-examples      a user's example fails: the code is wrong
    fail-model-tests   the user's examples pass (or there are none) and model-written tests fail that not
                       every independent attempt fails too
    fail-disputed      only model-written tests fail, and every independent attempt (at least two) fails
                       them the same way: the tests may be wrong and the code right — which tests, and what
                       each attempt returned, is in the report
    not-tested         no test run happened

Independent attempts are modules the developer's model wrote from the task alone (the consensus's and the
second opinions' samples, and, when the verdict would rest on model-written tests with fewer than two at
hand, up to two asked for it: `gather`). Each is run against the final tests in a probe folder (`judge`).
`classify` is pure: reports in, a frozen Verdict out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crew.answers import feedback
from crew.journal.records import VerdictReached
from crew.sandbox import TestReport

if TYPE_CHECKING:
    from crew.run.state import RunState

PASS_KINDS = frozenset({"pass-examples", "pass-model-tests", "pass-unsettled", "pass-unreproduced", "pass-split"})
KINDS = ("pass-examples", "pass-model-tests", "pass-unsettled", "pass-unreproduced", "pass-split", "fail-examples",
         "fail-model-tests", "fail-disputed", "not-tested")
MIN_ATTEMPTS = 2      # fewer independent attempts than this cannot dispute a test
MAX_ATTEMPTS = 4      # at most this many are run against the final tests (each is one sandboxed pytest run)
_MESSAGE_CHARS = 160


@dataclass(frozen=True)
class AttemptRun:
    """One independent attempt run against the final tests."""

    usable: bool                       # it imports, finishes, and passes every example of the user's
    ok: bool                           # it passes every test
    failing: dict[str, str] = field(default_factory=dict)  # test id -> the first line of its failure


@dataclass(frozen=True)
class Disputed:
    test: str
    code: str                          # how the delivered code fails it (pytest's first line)
    attempts: tuple[str, ...]          # per usable attempt: how it fails it too


@dataclass(frozen=True)
class Verdict:
    kind: str
    summary: str                       # pytest's one line for the final round
    examples_total: int
    examples_passed: int
    model_total: int
    model_passed: int
    attempts: int                      # usable independent attempts run against the final tests
    agreeing: int                      # of them, those that pass every test the code passes
    disputed: tuple[Disputed, ...] = ()
    undisputed: tuple[str, ...] = ()   # failing model-written tests some attempt passes
    broken: str = ""                   # why no test could judge the code: it does not import, or the run died
    unsettled: tuple[str, ...] = ()    # calls no test makes where an attempt alike on the tests differs
    alone: str = ""                    # how the other attempts went, when none behaves like the code
    split: tuple[str, ...] = ()        # the tests' calls where the attempts split, when half or more differ

    @property
    def ok(self) -> bool:
        return self.kind in PASS_KINDS

    def strict_exit(self) -> int:
        """`--strict`: 0 where the strongest evidence says the code works, else 3. A disputed FAIL counts as
        working only when the user's own examples exist and pass: then the user's words and every independent
        attempt side with the code against the model's tests."""
        if self.ok or (self.kind == "fail-disputed" and self.examples_total > 0):
            return 0
        return 3

    def headline(self) -> str:
        ex = f"your {self.examples_total} example(s) pass" if self.examples_total else ""
        agree = (f"{self.agreeing} of {self.attempts} independent attempt(s) also pass every test"
                 if self.attempts else "no independent attempt was run")
        if self.kind == "pass-examples":
            return f"PASS — confirmed by your own examples ({ex}); {self.summary}"
        if self.kind == "pass-unsettled":
            base = ex if ex else "the task gives no example; the model-written tests pass"
            return (f"PASS, not settled — {base}, but independent attempts that pass the same tests return "
                    f"something else on {len(self.unsettled)} input(s) no test tries (listed below: check which "
                    f"is right); {self.summary}")
        if self.kind == "pass-unreproduced":
            base = ex if ex else "the model-written tests pass"
            return (f"PASS, not reproduced — {base}, but {self.alone}: what no test shows may be misread (check "
                    f"what the task says in words against the code); {self.summary}")
        if self.kind == "pass-split":
            base = ex if ex else "the model-written tests pass"
            return (f"PASS, split — {base}, but the independent attempts split on the tests' own calls: no more "
                    f"than half behave like the code (the calls and what the others return are listed below: "
                    f"check which reading the task means); {self.summary}")
        if self.kind == "pass-model-tests":
            return (f"PASS on model-written tests only — the task gives no example, so nothing the user wrote "
                    f"confirms it; {agree}; {self.summary}")
        if self.kind == "fail-examples":
            return (f"FAIL — {self.examples_total - self.examples_passed} of your {self.examples_total} "
                    f"example(s) fail: the code is wrong; {self.summary}")
        if self.kind == "fail-disputed":
            base = f"{ex}; " if ex else "the task gives no example; "
            return (f"FAIL, disputed — the code may be right: {base}only {len(self.disputed)} model-written "
                    f"test(s) fail, and all {self.attempts} independent attempts fail them the same way; "
                    f"{self.summary}")
        if self.kind == "fail-model-tests" and self.broken:
            return f"FAIL — {self.broken}; {self.summary}"
        if self.kind == "fail-model-tests":
            base = f"{ex}, but " if ex else "the task gives no example; "
            return (f"FAIL — {base}{self.model_total - self.model_passed} model-written test(s) fail that "
                    f"independent attempts do not all fail; {self.summary}")
        return "NOT TESTED — no test run happened"

    def lines(self) -> list[str]:
        """The report's "How sure" section."""
        out = [f"- kind: `{self.kind}`"]
        if self.examples_total:
            out.append(f"- your examples: {self.examples_passed}/{self.examples_total} pass")
        else:
            out.append("- the task states no example: every test is model-written (evidence, not truth)")
        if self.model_total:
            out.append(f"- model-written tests: {self.model_passed}/{self.model_total} pass")
        out.append(f"- independent attempts by the developer's model (from the task alone) run against the "
                   f"final tests: {self.attempts} usable, {self.agreeing} pass every test")
        for d in self.disputed:
            out.append(f"- disputed `{d.test}`: the code — {d.code}; "
                       + "; ".join(f"attempt {i} — {m}" for i, m in enumerate(d.attempts, 1)))
        for u in self.unsettled:
            out.append(f"- not settled {u}")
        if self.alone:
            out.append(f"- not reproduced: {self.alone}")
        for sp in self.split:
            out.append(f"- split {sp}")
        if self.undisputed:
            out.append("- failing, and passed by some attempt (the code is likely wrong there): "
                       + ", ".join(f"`{t}`" for t in self.undisputed[:8]))
        return out


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def failure_line(message: str) -> str:
    """pytest's first line of a failure (the assert with both values), object addresses blanked."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "fails")
    return _ADDRESS.sub("0x…", line)[:_MESSAGE_CHARS]


def attempt_run(report: TestReport, n_examples: int) -> AttemptRun:
    sp = feedback.split(report, n_examples)
    broken = bool(report.import_errors) or report.timed_out or report.died or bool(report.tampered)
    usable = not broken and sp.examples_passed == sp.examples_total
    return AttemptRun(usable=usable, ok=report.ok,
                      failing={f.name: failure_line(f.message) for f in report.failures})


def classify(final: TestReport | None, n_examples: int, runs: list[AttemptRun],
             unsettled: tuple[str, ...] = (), alone: str = "", split: tuple[str, ...] = ()) -> Verdict:
    """The verdict's kind from the final round, the independent attempts' runs, the calls no test makes
    on which attempts alike on the tests differ from the code, how the attempts went when none behaves
    like the code, and the tests' calls they split on (pure)."""
    if final is None:
        return Verdict("not-tested", "", n_examples, 0, 0, 0, 0, 0)
    sp = feedback.split(final, n_examples)
    usable = [r for r in runs if r.usable]
    base: dict[str, Any] = dict(
        summary=final.summary(), examples_total=sp.examples_total, examples_passed=sp.examples_passed,
        model_total=sp.model_total, model_passed=sp.model_passed, attempts=len(usable),
        agreeing=sum(1 for r in usable if r.ok))
    if final.ok and unsettled:
        return Verdict("pass-unsettled", unsettled=unsettled, **base)
    if final.ok and alone:
        return Verdict("pass-unreproduced", alone=alone, **base)
    if final.ok and split:
        return Verdict("pass-split", split=split, **base)
    if final.ok:
        return Verdict("pass-examples" if n_examples else "pass-model-tests", **base)
    broken = bool(final.import_errors) or final.timed_out or final.died or bool(final.tampered)
    if n_examples and (sp.examples_failed or broken):
        return Verdict("fail-examples", **base)
    failing = [f for f in final.failures if not feedback.is_example(f)]
    disputed, undisputed = [], []
    for f in failing:
        # Disputed only where every attempt fails the test exactly as the code does (the same value seen by
        # the same assert): an attempt that fails it another way (ClassEval/4: a KeyError where the code's
        # assert saw 97.0) does not side with the code.
        code = failure_line(f.message)
        if len(usable) >= MIN_ATTEMPTS and all(r.failing.get(f.name) == code for r in usable):
            disputed.append(Disputed(test=f.name, code=code, attempts=tuple(r.failing[f.name] for r in usable)))
        else:
            undisputed.append(f.name)
    kind = "fail-disputed" if failing and not undisputed and not broken else "fail-model-tests"
    return Verdict(kind, disputed=tuple(disputed), undisputed=tuple(undisputed),
                   broken=_broken(final) if broken else "", **base)


def _broken(final: TestReport) -> str:
    if final.import_errors:
        return "the module does not import (" + final.import_errors[0].splitlines()[0][:_MESSAGE_CHARS] + ")"
    if final.timed_out:
        return "the test run did not finish in time"
    if final.died:
        return "the test run died"
    return "the sandbox refused a file (" + "; ".join(final.tampered)[:_MESSAGE_CHARS] + ")"


# ------------------------------------------------------------------------------------------ the run's side


def rests_on_model_tests(state: RunState) -> bool:
    """Whether the final verdict would lean on model-written tests alone: no example, or only model tests
    fail while the user's examples pass."""
    final = state.last
    if final is None or final.import_errors or final.timed_out or final.died or final.tampered:
        return False
    if not state.examples:
        return True
    if final.ok:
        return False
    return feedback.split(final, len(state.examples)).examples_failed == 0


def gather(state: RunState) -> None:
    """Before the servers go: when the verdict would rest on model-written tests and fewer than MIN_ATTEMPTS
    independent attempts are at hand, ask for the missing ones (decoded together where the server has slots)."""
    from crew.run.second_opinion import draft_modules

    if state.draft is None or not rests_on_model_tests(state):
        return
    missing = MIN_ATTEMPTS - len(state.tally.independent)
    if missing <= 0:
        return
    state.progress(f"  [yellow]the verdict rests on model-written tests: asking {missing} independent attempt(s) "
                   "to see whether they agree with the code[/]")
    for code in draft_modules(state, state.tally.drafts_asked + 1, missing, task="verdict"):
        if code is not None:
            state.tally.independent.append(code)


def judge(state: RunState) -> Verdict:
    """The verdict of the code as it stands, with the attempts at hand run against its final tests."""
    final = state.last
    runs: list[AttemptRun] = []
    if rests_on_model_tests(state):  # with a user's example failing, no attempt can change the kind
        # Two samples that came out the same program are two independent votes for it (as in the consensus),
        # run once.
        probed: dict[str, AttemptRun] = {}
        for code in state.tally.independent[:MAX_ATTEMPTS]:
            if code not in probed:
                probed[code] = attempt_run(state.ledger.probe(code), len(state.examples))
            runs.append(probed[code])
    doubts = state.tally.doubts
    # The consensus's findings hold only for the code it probed: a fix round since makes them stale.
    fresh = bool(doubts.code) and doubts.code == state.module_source()
    v = classify(final, len(state.examples), runs, doubts.unsettled if fresh else (), doubts.alone if fresh else "",
                 doubts.split if fresh else ())
    state.log.record(VerdictReached(kind=v.kind, attempts=v.attempts, agreeing=v.agreeing,
                                    disputed=tuple(d.test for d in v.disputed), undisputed=v.undisputed,
                                    unsettled=v.unsettled, alone=v.alone, split=v.split))
    return v
