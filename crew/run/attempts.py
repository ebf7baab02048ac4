"""Attempts at the module: the implement loop against the user's examples, and the best round kept.

Each attempt is written and run like any developer answer (`RunState.write_module`, `run_tests`); the best
round so far is remembered by its score (`Ledger.best`), and delivered again if a later round is worse.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from crew.answers import answers
from crew.errors import RunAborted
from crew.journal.records import Answer, AskedAhead, DraftFailed, NoModule, SkeletonChanged, StubAnswer
from crew.run.drafter import LEAN_NOTE
from crew.sandbox import TestReport

if TYPE_CHECKING:
    from crew.run.state import RunState

ANSWER_LOG_CHARS = 6000  # each developer answer is logged (run.jsonl) up to this length


def remember_if_best(state: RunState, report: TestReport) -> bool:
    """Keep the module of the best round so far; True when this round is the new best (crew/run/ledger.py)."""
    return state.ledger.remember_if_best(report)


def deliver_best(state: RunState, task: str) -> TestReport | None:
    """Never deliver worse than the best round: put its module back and let pytest confirm it."""
    return state.ledger.deliver_best(task)


def implement(state: RunState, output: Any) -> tuple[bool, Any]:
    """The developer's answer, then attempts written anew until one passes the user's examples; the best
    attempt is delivered (bounded by `implement_rounds`).

    Retries are plain requests to the developer's model (`draft`), not CrewAI retries: CrewAI's retry
    shows the failed answer again (a small model then copies it), and its role-play scaffolding is what
    the one-shot prompt lacks — measured on HumanEval/45: one shot answered with working code, the crew's
    developer three times with the bare signature. The first retry is greedy, the next ones hotter; each
    is told in one line what the attempt before it got wrong.
    """
    answer, attempt = output.raw, 1
    while True:
        ok, note, short = _attempt(state, answer, attempt)
        if ok or attempt >= state.implement_rounds:
            break
        if state.draft is None:  # no direct line to the model (a replayed task without one): CrewAI retries
            if state.may_ask_again("implement", "implement"):
                output.raw = "(an attempt that was refused)"
                return False, note + (f" Answer with the complete module in one fenced code block whose first "
                                      f"line is `# file: {state.module}`.")
            break
        attempt += 1
        state.progress(f"  [yellow]{short} — the developer writes it again (attempt {attempt} of "
                       f"{state.implement_rounds})[/]")
        # The first retry is exactly the one-shot request (greedy, no note): the crew never does worse
        # than the model alone on a task whose one-shot answer passes the user's examples.
        compose = getattr(state.draft, "by_method", None)  # crew/run/by_method.py, when the knob is on
        if attempt == 2:
            answer = next_draft(state, greedy=True)
        elif attempt == 3 and compose is not None:
            answer = compose()
        else:
            answer = next_draft(state, note=note)
    deliver_best(state, "implement")
    return True, state.module_block()


def _attempt(state: RunState, answer: str, attempt: int) -> tuple[bool, str, str]:
    """Write one attempt and check it: (passed, what to tell the next attempt, what to tell the user)."""
    state.log.record(Answer(task="implement", attempt=attempt, text=answer[:ANSWER_LOG_CHARS]))
    if not state.write_module(answer):
        why = f" ({'; '.join(state.tally.refusals)})" if state.tally.refusals else ""
        state.log.record(NoModule(attempt=attempt))
        if answer.count("```") % 2 == 1:  # a fence opened and never closed: the answer ran into its length limit
            return False, ("An earlier answer was cut off before its end. Write the module shorter: no docstrings, "
                           "no comments, no examples."), "the answer was cut off before the module ended"
        return False, f"No file named {state.module} was found in the answer{why}.", "the answer holds no module"
    stubs = answers.stub_functions(state.module_source(), set(state.functions) | set(state.methods))
    if stubs:
        names = ", ".join(f"`{n}`" for n in stubs)
        state.log.record(StubAnswer(attempt=attempt, functions=tuple(stubs)))
        return False, (f"An earlier answer only repeated the signature and docstring of {names}: write the "
                       "complete body."), f"the answer only repeats the signature of {names}"
    departs = answers.skeleton_problems(state.module_source(), state.task)
    if departs:
        state.log.record(SkeletonChanged(attempt=attempt, problems=tuple(departs)))
        return False, ("Keep the class, method names and parameters exactly as the task gives them: "
                       + "; ".join(departs) + "."), f"the answer changes the task's skeleton ({departs[0]})"
    if not state.examples:
        return True, "", ""
    report = state.run_tests(f"implement: the task's examples (attempt {attempt})", "implement")
    remember_if_best(state, report)
    if report.ok:
        return True, "", ""
    return False, ("An earlier attempt failed the examples given in the task:\n" + state.feedback_on(report)
                   + "\nMake sure these examples hold."), "the code fails the task's own examples"


def next_draft(state: RunState, *, greedy: bool = False, note: str = "") -> str:
    """The developer's model asked directly: the implement prompt (+ a note), each with its own seed."""
    assert state.draft is not None
    state.tally.drafts_asked += 1
    return _asked(state, state.tally.drafts_asked, greedy, note)


def send_ahead(state: RunState) -> None:
    """The consensus's attempts asked now, once specify is done (crew/run/crew.py), in threads of their own:
    they need the task alone (the direct request, no note), so they decode beside implement and the tester in
    the developer's server's slots instead of after the tests, on the run's critical path. Their numbers — and
    so their seeds — are given here, before any other attempt's; the first `next_drafts` takes their answers
    (the consensus, or whichever asks for independent attempts first). Only where the server has slots, only
    with `workflow.samples_ahead`, once a run, and not on a resume past write_tests (its consensus is done)."""
    n = state.consensus_samples
    if not state.knobs.samples_ahead or n < 1 or state.draft is None \
            or not getattr(state.draft, "concurrent", False):
        return
    if any((r.get("event"), r.get("task")) in (("task_done", "write_tests"), ("asked_ahead", "consensus"))
           for r in state.log.records()):  # one read of the journal: past write_tests, or sent already
        return
    ks = _numbers(state, n)
    pool = ThreadPoolExecutor(min(n, state.knobs.samples_at_once), thread_name_prefix="ahead")
    note = sample_note(state)
    state.tally.ahead = [pool.submit(_asked, state, k, False, note) for k in ks]
    pool.shutdown(wait=False)  # its threads end with their requests
    state.log.record(AskedAhead(task="consensus", agent="developer", sent=True, why=f"{n} attempt(s)"))


def settle_ahead(state: RunState, timeout_s: float = 5.0) -> None:
    """At the end of the crew: attempts asked ahead that nothing took are not waited for long (their server
    stops next); those not started are cancelled."""
    for future in state.tally.ahead:
        if not future.cancel():
            with contextlib.suppress(Exception, RunAborted):  # a second Ctrl-C still stops the wait
                future.result(timeout=timeout_s)
    state.tally.ahead = []


def next_drafts(state: RunState, n: int) -> list[str]:
    """`n` independent attempts (no note, sampled hotter), asked at once: they decode together in the slots
    of the developer's server (llama-server, OLLAMA_NUM_PARALLEL), up to `samples_at_once` in flight. Those
    asked ahead once specify was done (`send_ahead`) are taken first.

    Each attempt's number — and so its seed — is given before any is sent, and the answers come back in
    that order, so a run is the same whichever finishes first. A drafter that cannot be asked from several
    threads (a scripted test model) is asked one after the other. A crash that ends the run (RunAborted)
    propagates from whichever request met it."""
    assert state.draft is not None
    taken, state.tally.ahead = state.tally.ahead[:n], state.tally.ahead[n:]
    ks = _numbers(state, n - len(taken))
    at_once = min(len(ks), state.knobs.samples_at_once)
    note = sample_note(state)
    if at_once <= 1 or not getattr(state.draft, "concurrent", False):
        asked = [_asked(state, k, False, note) for k in ks]
    else:
        with ThreadPoolExecutor(at_once, thread_name_prefix="sample") as pool:
            asked = list(pool.map(lambda k: _asked(state, k, False, note), ks))
    return [f.result() for f in taken] + asked


def sample_note(state: RunState) -> str:
    """What an independent attempt is told beyond the task: with `workflow.lean_samples`, to leave out the
    docstrings, comments and examples it would copy back (the one delivered gets the task's docstrings back,
    second_opinion.module_from)."""
    return LEAN_NOTE if state.knobs.lean_samples else ""


def _numbers(state: RunState, n: int) -> list[int]:
    """The next `n` attempt numbers (each attempt's seed)."""
    first = state.tally.drafts_asked + 1
    state.tally.drafts_asked += n
    return list(range(first, first + n))


def _asked(state: RunState, k: int, greedy: bool, note: str) -> str:
    assert state.draft is not None
    try:
        return state.draft(k, greedy, note)
    except Exception as exc:  # a failed extra call costs this attempt, never the run
        state.log.record(DraftFailed(attempt=k, why=f"{type(exc).__name__}: {exc}"[:300]))
        return ""
