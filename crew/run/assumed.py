"""The examples the crew assumes when the task states none: asked of the manager beside implement, checked
against independent attempts once tests exist, joined to the tests only where the attempts agree.

When: `workflow.assumed_examples` > 0, the task names functions and no class, and states no example. The
request goes to the manager's model when the crew starts (crew/run/workflow.py `execute`), in a thread of its
own where the manager's server decodes several requests at once, so it costs no wall time beside specify and
implement; elsewhere it is asked when first needed. In write_tests' guardrail, after the consensus
(`handlers.tests`), `confirm` runs every assumed call on the code and on the independent attempts at hand
(asking for more when fewer than steps.ASSUMED_ATTEMPTS are usable), in probe folders, and keeps the examples
the attempts agree with (crew/answers/assumed.py): they are written to test_assumed_examples.py — a system file
no agent may write — and the model-written tests that contradict them are dropped. The report lists every
assumed example, kept or not, apart from the user's. The verdict's kinds do not change: a kept example is
still the crew's reading, not the user's (crew/run/verdict.py counts it with the model-written tests).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from crew.answers import assumed, contradictions, examples, probes
from crew.journal.records import AssumedAsked, AssumedChecked, ExampleCase
from crew.run.attempts import ANSWER_LOG_CHARS
from crew.run.steps import ASSUMED_ATTEMPTS, step
from crew.sandbox import TestReport

if TYPE_CHECKING:
    from crew.run.state import RunState

ASSUMED_SEED_OFFSET = 2000   # never the seed of a draft (1000 + k) nor of a guardrail retry (seed + 1, …)
_WAIT_S = 900.0              # the answer is long there by write_tests; a hung server is the failover's matter


def wanted(state: RunState) -> bool:
    """Whether this run asks for assumed examples."""
    return (state.knobs.assumed_examples > 0 and not state.examples and bool(state.functions)
            and not state.classes and step(state.knobs, "specify").budget("assumed_request") > 0)


def ask_ahead(state: RunState, llm: Any) -> None:
    """Send the manager's request now, in a thread, where its server has slots; else ask it when needed."""
    if not wanted(state) or state.tally.assumed_answer is not None:
        return
    if state.log.of("assumed_examples"):  # a replay or resume of a run that asked already: its tests hold them
        return
    text = assumed.request(state.task, state.functions, state.knobs.assumed_examples)
    seed = (getattr(llm, "seed", None) or 0) + ASSUMED_SEED_OFFSET

    requests = step(state.knobs, "specify").budget("assumed_request")

    def ask() -> str:
        started = time.monotonic()
        one = llm.sibling(temperature=llm.temperature, seed=seed) if hasattr(llm, "sibling") else llm
        try:
            answer = str(one.call([{"role": "user", "content": text}]))
            # A small model asked for examples may write the module instead (own/textstats): asked once more,
            # told so, within the step's budget.
            for _ in range(requests - 1):
                if assumed.parse(answer, state.functions, state.knobs.assumed_examples):
                    break
                answer = str(one.call([{"role": "user", "content": text},
                                       {"role": "assistant", "content": answer[:2000]},
                                       {"role": "user", "content": assumed.AGAIN}]))
        finally:
            if one is not llm:
                llm.absorb(one)
        state.tally.assumed_seconds = time.monotonic() - started
        return answer

    if not (hasattr(llm, "sibling") and getattr(llm, "server_slots", 1) > 1):
        state.tally.assumed_answer = ask  # one request at a time there: asked when write_tests needs it
        return
    future: Future[str] = Future()

    def body() -> None:
        try:
            future.set_result(ask())
        except BaseException as exc:  # noqa: BLE001 — a crash (RunAborted) is handed to whoever waits
            future.set_exception(exc)

    threading.Thread(target=body, name="manager-assumed", daemon=True).start()
    state.tally.assumed_answer = lambda: future.result(timeout=_WAIT_S)
    state.progress("  the task states no example: the manager writes the examples it assumes, beside implement")


def confirm(state: RunState, report: TestReport) -> TestReport:
    """Check the assumed examples against the attempts; the accepted ones join the tests. The round to go on
    with (a new one when tests changed)."""
    pending, state.tally.assumed_answer = state.tally.assumed_answer, None
    if pending is None:
        return report
    try:
        answer = pending()
    except Exception as exc:  # the manager's request failed: the run goes on without assumed examples
        state.progress(f"  [yellow]no assumed examples: the manager's request failed ({type(exc).__name__})[/]")
        state.log.record(AssumedAsked(examples=(), answer=f"{type(exc).__name__}: {exc}"[:300], seconds=0.0))
        return report
    found = assumed.parse(answer, state.functions, state.knobs.assumed_examples)
    state.log.record(AssumedAsked(examples=tuple(ExampleCase(e.call, e.expected, e.kind) for e in found),
                                  answer=answer[:ANSWER_LOG_CHARS], seconds=round(state.tally.assumed_seconds, 3)))
    if not found:
        state.progress("  [yellow]the manager's answer held no usable example: none assumed[/]")
        return report
    codes = _attempts(state)
    checks = _check(state, found, codes)
    state.tally.assumed_checks = checks
    kept = [c.example for c in checks if c.accepted]
    dropped: list[str] = []
    if kept:
        state.workspace.write_text(assumed.ASSUMED_FILE, examples.render_tests(state.module_name, kept, assumed=True))
        state.written[assumed.ASSUMED_FILE] = "system"
        dropped = _drop_contradicting(state, kept)
    state.log.record(AssumedChecked(calls=tuple(c.example.call for c in checks),
                                    agreeing=tuple(c.agreeing for c in checks),
                                    attempts=max((c.attempts for c in checks), default=0),
                                    accepted=tuple(e.call for e in kept),
                                    file=assumed.ASSUMED_FILE if kept else "", dropped_tests=tuple(dropped)))
    state.progress(f"  assumed examples: {len(kept)} of {len(checks)} confirmed by the attempts"
                   + (f" → {assumed.ASSUMED_FILE}" if kept else " — none joins the tests")
                   + (f"; dropped {len(dropped)} model-written test(s) that contradict them" if dropped else ""))
    if not kept:
        return report
    return state.run_tests("assumed examples joined the tests", "write_tests")


def _attempts(state: RunState) -> list[str]:
    """The code and the independent attempts at hand; more asked when fewer than ASSUMED_ATTEMPTS."""
    from crew.run.second_opinion import draft_modules

    codes = [c for c in [state.module_source(), *state.tally.independent] if c]
    missing = min(step(state.knobs, "write_tests").budget("assumed_attempts"), ASSUMED_ATTEMPTS - len(codes))
    if missing > 0 and state.draft is not None:
        state.progress(f"  [yellow]asking {missing} independent attempt(s) to check the assumed examples "
                       "against[/]")
        for code in draft_modules(state, state.tally.drafts_asked + 1, missing, task="assumed"):
            if code is not None:
                state.tally.independent.append(code)
                codes.append(code)
    return codes


def _check(state: RunState, found: list[examples.Example], codes: list[str]) -> list[assumed.Check]:
    """Every assumed call on every code, once per distinct program (the same program twice is two votes)."""
    test_file = examples.render_tests(state.module_name, found, assumed=True)
    calls = [e.call for e in found]
    probe_file = probes.render_probe(state.module_name, sorted({e.function for e in found}), calls)
    others = frozenset(p.name for p in state.code_dir.glob("test_*.py"))
    seen: dict[str, tuple[list[bool], tuple[str | None, ...]] | None] = {}
    for code in codes:
        if code in seen:
            continue
        rep = state.ledger.probe(code, extra={assumed.ASSUMED_FILE: test_file, probes.PROBE_FILE: probe_file},
                                 skip=others)
        if rep.import_errors or rep.timed_out or rep.died or rep.tampered:
            seen[code] = None
            continue
        passed = set(rep.passed_ids)
        seen[code] = ([f"{assumed.ASSUMED_FILE}::test_example_{i}" in passed for i in range(1, len(found) + 1)],
                      probes.results(rep, len(calls)))
    runs = [r for r in (seen[c] for c in codes) if r is not None]
    return [assumed.check(e, [r[0][i] for r in runs], [r[1][i] for r in runs]) for i, e in enumerate(found)]


def _drop_contradicting(state: RunState, kept: list[examples.Example]) -> list[str]:
    """Model-written tests asserting another value for a confirmed call are dropped (as for the user's)."""
    dropped: list[str] = []
    system = {examples.EXAMPLES_FILE, assumed.ASSUMED_FILE}
    for path in sorted(state.code_dir.glob("test_*.py")):
        if path.name in system or state.written.get(path.name) == "system":
            continue
        source = state.workspace.read_text(path.name)
        bad = contradictions.contradictions(source, kept)
        if bad:
            state.workspace.write_text(path.name, contradictions.drop_functions(source, {c.test for c in bad}))
            dropped += [f"{path.name}::{c.test}" for c in bad]
    return dropped

