"""Code or test? When only model-written tests fail, independent attempts at the module vote.

The vote is asked only when the code passes every example of the user's and at least one model-written
test (`only_model_tests_fail`); then up to `second_opinions` attempts by the developer's model, each from
the task alone, are run against every test (`ask`). docs/architecture.md, "Code or test?".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from crew.answers import answers, contradictions, feedback
from crew.answers.assumed import ASSUMED_FILE
from crew.answers.codeblocks import extract_code_files
from crew.answers.docstrings import with_task_docstrings
from crew.journal.events import SecondOpinionAdopted, TestsRepaired
from crew.journal.records import Answer, AttemptUnusable, SecondOpinion, SecondOpinionsUndecided
from crew.run.attempts import ANSWER_LOG_CHARS, next_drafts
from crew.run.steps import EXTRA_VOTER_ATTEMPTS
from crew.sandbox import TestReport

if TYPE_CHECKING:
    from crew.run.state import RunState


def only_model_tests_fail(state: RunState, report: TestReport) -> bool:
    """The code passes every example of the user's, and some model-written test fails: who is wrong?

    Only a task with examples — the user's, or those the crew assumed and its attempts confirmed
    (`confirmed_assumed`): they are what makes an independent attempt a credible voter. Measured at
    a1e76da without this rule (own/account, no example): every model test failed on every attempt, five
    of six were dropped as "wrong", and the report said PASS on code the hidden tests fail. Nor when the
    code passes no model test at all: then the tests and the code disagree on something basic (a name,
    an interface), which is the fix loop's business, not a vote's.
    """
    if not (state.examples or confirmed_assumed(state)) or report.ok or report.import_errors \
            or report.timed_out or report.died or report.tampered:
        return False
    sp = feedback.split(report, len(state.examples))
    tester_passed = sp.model_passed - (confirmed_assumed(state) if _passes_assumed(state, report) else 0)
    return bool(report.failures) and sp.examples_failed == 0 and tester_passed > 0 and _passes_assumed(state, report)


def confirmed_assumed(state: RunState) -> int:
    """Examples the crew assumed and its attempts confirmed (crew/run/assumed.py): on a task that states none,
    they make an attempt a credible voter as the user's examples do — two readings of the task agreed on
    them, which a model-written test alone never shows."""
    return sum(1 for c in state.tally.assumed_checks if c.accepted)


def _passes_assumed(state: RunState, report: TestReport) -> bool:
    """Every confirmed assumed example passes in this round (true when there are none)."""
    n = confirmed_assumed(state)
    if not n:
        return True
    passed = sum(1 for t in report.passed_ids if t.split("::", 1)[0].rsplit("/", 1)[-1] == ASSUMED_FILE)
    return passed == n


def ask(state: RunState, report: TestReport) -> TestReport:
    """Independent implementations decide whether the code or a model-written test is wrong.

    Model-written expected values are often wrong (published work: ~15 %; our 0.5B tester more), and a
    developer told to satisfy a wrong test bends correct code to it. So before any fix, independent attempts
    by the developer's model — the consensus's first, then new ones from the task alone (no feedback, sampled
    hotter) for the voters still missing — run against every test. Each attempt that
    passes the user's examples votes: a failing test that one of them passes shows the code is wrong — and
    an attempt that passes everything replaces it; a test that the code and every such attempt fail
    (at least three implementations agree against it) is taken to be wrong and dropped. Bounded: at most
    `second_opinions` + 2 new model calls, only in this case.
    """
    if state.draft is None or state.second_opinions < 1:
        return report
    failing = {f.name for f in report.failures}
    passed_by: dict[str, int] = dict.fromkeys(failing, 0)
    voters, adopted, adopted_code = 0, 0, ""
    at_hand = list(state.tally.independent)
    whom = (f"the consensus's {len(at_hand)} attempt(s)" if at_hand
            else f"{state.second_opinions} independent implementation(s)")
    state.progress(f"  [yellow]only model-written tests fail — asking {whom} whether the code or the tests are "
                   "wrong[/]")
    # The consensus's attempts are at hand (the same request: the task alone, sampled hotter, seeds of their
    # own) and vote first; new ones are asked only for the voters still missing — measured before (4th session,
    # HumanEval dev): the second opinions' two fresh attempts were the last 20–25 s of a run's critical path.
    # Attempts that fail the user's examples have no vote, so a few more are asked until `second_opinions`
    # voters are found: measured at 6a13567 (HumanEval/45), one voter of two attempts left two wrong model
    # tests standing and the report said FAIL on correct code. Each attempt is tested in a probe folder of
    # its own (crew/run/ledger.py): code/ holds the module until one is adopted, whatever kills the run.
    # Asked in batches decoded together: first as many as voters are missing, then the extra ones at once if
    # some had no vote; each batch is judged in attempt order, as one-by-one asking would have.
    probed: dict[str, TestReport] = {}  # the same program twice is two votes, run once

    def candidates() -> Iterator[tuple[int, str | None, bool]]:
        yield from ((k, alt, True) for k, alt in enumerate(at_hand, 1))
        first = len(at_hand) + 1
        for extra in (0, EXTRA_VOTER_ATTEMPTS):
            n = extra or state.second_opinions - voters
            if voters >= state.second_opinions or adopted or n < 1:
                return
            alts = draft_modules(state, first, n)
            state.tally.independent.extend(alt for alt in alts if alt is not None)
            yield from ((k, alt, False) for k, alt in enumerate(alts, first))
            first += n

    for k, alt, reused in candidates():
        if voters >= state.second_opinions:
            break
        if alt is None:
            continue
        if alt not in probed:
            probed[alt] = state.ledger.probe(alt)
        rep = probed[alt]
        sp = feedback.split(rep, len(state.examples))
        usable = not rep.import_errors and not rep.timed_out and not rep.died and not rep.tampered
        state.log.record(SecondOpinion(attempt=k, summary=rep.summary(), usable=usable, reused=reused,
                                       examples_passed=sp.examples_passed, examples_total=sp.examples_total))
        if not usable or sp.examples_passed < sp.examples_total or not _passes_assumed(state, rep):
            continue  # an attempt that fails the user's examples (or the confirmed assumed ones) has no vote
        voters += 1
        for name in failing - {f.name for f in rep.failures}:
            passed_by[name] += 1
        if rep.ok:
            adopted, adopted_code = k, alt
            break
    if adopted:
        state.tally.adopted(adopted_code)
        state.ledger.deliver(adopted_code)
        state.log.record(SecondOpinionAdopted(attempt=adopted))
        state.progress(f"  [green]independent attempt {adopted} passes every test: its code replaces the module[/]")
        return state.run_tests(f"second opinion {adopted} adopted", "write_tests")
    wrong = sorted(name for name, n in passed_by.items() if n == 0) if voters >= 2 else []
    if not wrong:
        state.log.record(SecondOpinionsUndecided(voters=voters, failing=tuple(sorted(failing))))
        return report
    _drop_tests(state, wrong, voters)
    return state.run_tests("model tests judged wrong dropped", "write_tests")



def draft_modules(state: RunState, first_k: int, n: int, *, task: str = "second_opinion") -> list[str | None]:
    """`n` independent attempts asked at once (hotter, no note: independent of everything the run has
    seen), numbered from `first_k`, each cleaned like any developer answer; None where an answer holds no
    usable module."""
    raws = next_drafts(state, n)
    return [module_from(state, raw, first_k + i, task=task) for i, raw in enumerate(raws)]


def module_from(state: RunState, raw: str, k: int, *, task: str = "second_opinion") -> str | None:
    """One attempt's answer, cleaned like any developer answer; None when it holds no usable module."""
    state.log.record(Answer(task=task, attempt=k, text=raw[:ANSWER_LOG_CHARS]))
    files = [cf for cf in extract_code_files(raw, default_name=state.module) if state.code_only(cf)]
    code = next((cf.content for cf in files if cf.path == state.module), files[0].content if len(files) == 1
                else None)
    if not code or answers.stub_functions(code, set(state.functions) | set(state.methods)):
        state.log.record(AttemptUnusable(task=task, attempt=k, why="no usable module in the answer"))
        return None
    departs = answers.skeleton_problems(code, state.task)
    if departs:
        state.log.record(AttemptUnusable(task=task, attempt=k, why=f"changes the task's skeleton: {departs[0]}"))
        return None
    code, _ = answers.without_import_time_code(code)
    code, _ = answers.with_task_imports(code, state.task)
    code, _ = with_task_docstrings(code, state.task)  # asked for the code alone (LEAN_NOTE): delivered whole
    return code


def _drop_tests(state: RunState, names: list[str], voters: int) -> None:
    by_file: dict[str, set[str]] = {}
    for name in names:
        path, _, func = name.partition("::")
        if func and "::" not in func:
            by_file.setdefault(Path(path).name, set()).add(func)
    for path, funcs in by_file.items():
        if not state.workspace.safe_path(path).is_file():
            continue
        state.workspace.write_text(path, contradictions.drop_functions(state.workspace.read_text(path), funcs))
        which = "the task's examples" if state.examples else "the examples the crew assumed and confirmed"
        why = (f"fails on the code and on {voters} independent implementations that pass {which}: "
               "its expected value is taken to be wrong")
        state.log.record(TestsRepaired(path=path, changes=tuple(f"dropped {f}: {why}" for f in sorted(funcs))))
        state.progress(f"  [yellow]{path}: dropped {', '.join(sorted(funcs))} — {why}[/]")
