"""The verdict, computed in the parent from the supervisor's event stream (pure functions, no IO).

The stream comes from the worker's reporting plugin through the supervisor, which adds the exit status
the kernel gave it. Code under test could still write lines of its own into the worker's pipe, so the
stream is checked for what pytest itself never produces: a report for a test that was not collected, the
same phase twice, phases out of order, a zero exit status with failures or with tests that never
reported. Any of these is `tampered`, which fails the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crew.sandbox.report import TestFailure

_PHASES = ("setup", "call", "teardown")


@dataclass(frozen=True)
class Verdict:
    collected: int
    passed: int
    failed: int
    errors: int
    skipped: int
    failures: tuple[TestFailure, ...]
    import_errors: tuple[str, ...]
    exit_code: int            # the worker's, from waitpid in the supervisor; -1 when it never came
    running: str              # the test that started and never finished
    tampered: tuple[str, ...]
    passed_ids: tuple[str, ...] = ()  # node ids whose every phase passed: who passed, not only how many


def parse_events(raw: bytes) -> list[dict[str, Any]]:
    """The channel's JSON lines as events; a line cut by a kill, or anything not an object, is skipped."""
    events = []
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def verdict(events: list[dict[str, Any]], *, timed_out: bool) -> Verdict:
    counts = _count(events)
    exits = [e.get("status") for e in events if e.get("e") == "worker_exit"]
    exit_code = exits[-1] if exits and isinstance(exits[-1], int) else -1
    finished = exit_code != -1 or any(e.get("e") == "finish" for e in events)
    return Verdict(
        collected=counts["collected"], passed=counts["passed"], failed=counts["failed"],
        errors=counts["errors"], skipped=counts["skipped"], failures=_failures(events),
        import_errors=_import_errors(events, timed_out), exit_code=exit_code,
        running=_running(events) if timed_out or not finished or exit_code < 0 else "",
        tampered=_inconsistencies(events, exit_code, counts), passed_ids=_passed_ids(events))


def _passed_ids(events: list[dict[str, Any]]) -> tuple[str, ...]:
    """Tests whose call passed and whose setup and teardown did not fail, in the order they ran."""
    called, failed = [], set()
    for e in events:
        if e.get("e") != "report":
            continue
        nodeid, when, outcome = str(e.get("nodeid")), e.get("when"), e.get("outcome")
        if when == "call" and outcome == "passed":
            called.append(nodeid)
        elif outcome == "failed":
            failed.add(nodeid)
    return tuple(n for n in dict.fromkeys(called) if n not in failed)


def _count(events: list[dict[str, Any]]) -> dict[str, int]:
    """The same bookkeeping as pytest's terminal summary: setup/teardown failures are errors."""
    counts = {"collected": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for e in events:
        kind = e.get("e")
        if kind == "collected":
            counts["collected"] = int(e.get("n", 0))
        elif kind == "collect_error":
            counts["errors"] += 1
        elif kind == "report":
            when, outcome = e.get("when"), e.get("outcome")
            if outcome == "skipped":
                counts["skipped"] += 1
            elif when == "call":
                counts["passed" if outcome == "passed" else "failed"] += 1
            elif outcome == "failed":
                counts["errors"] += 1
    return counts


def _inconsistencies(events: list[dict[str, Any]], exit_code: int, counts: dict[str, int]) -> tuple[str, ...]:
    problems: list[str] = []
    collected = [e for e in events if e.get("e") == "collected"]
    if len(collected) > 1:
        problems.append("the test list was reported twice")
    ids = collected[0].get("ids") if collected else None
    known = set(ids) if isinstance(ids, list) else None
    if known is not None and len(known) != counts["collected"]:
        problems.append("the number of collected tests does not match their list")
    seen: dict[str, list[str]] = {}
    for e in events:
        if e.get("e") != "report":
            continue
        nodeid, when = str(e.get("nodeid")), str(e.get("when"))
        if known is not None and nodeid not in known:
            problems.append(f"a result for {nodeid}, which was never collected")
            continue
        phases = seen.setdefault(nodeid, [])
        if when not in _PHASES or when in phases or (phases and _PHASES.index(when) < _PHASES.index(phases[-1])):
            problems.append(f"{nodeid}: the {when} result came twice or out of order")
        phases.append(when)
    if exit_code == 0:
        unfinished = [n for n in (ids or []) if "teardown" not in seen.get(str(n), [])]
        if unfinished:
            problems.append(f"exit status 0, but {len(unfinished)} collected tests never finished "
                            f"(first: {unfinished[0]})")
        if counts["failed"] or counts["errors"]:
            problems.append("exit status 0 despite failed tests")
    statuses = [e.get("status") for e in events if e.get("e") == "finish"]
    if statuses and exit_code >= 0 and statuses[-1] != exit_code:
        problems.append(f"pytest finished with status {statuses[-1]}, but the process exited with {exit_code}")
    return tuple(dict.fromkeys(problems))[:5]


def _failures(events: list[dict[str, Any]]) -> tuple[TestFailure, ...]:
    out = []
    for e in events:
        if e.get("e") == "collect_error" or (e.get("e") == "report" and e.get("outcome") == "failed"):
            when = e.get("when", "collect")
            name = str(e.get("nodeid", "")) + ("" if when == "call" else f" [{when}]")
            out.append(TestFailure(name=name, message=str(e.get("message", "")),
                                   traceback=str(e.get("longrepr", ""))))
    return tuple(out)


def _import_errors(events: list[dict[str, Any]], timed_out: bool) -> tuple[str, ...]:
    errors, started, finished = [], [], set()
    for e in events:
        kind = e.get("e")
        if kind == "syntax":
            errors.append(str(e.get("error")))
        elif kind == "import_start":
            started.append(str(e.get("module")))
        elif kind == "import_done":
            finished.add(str(e.get("module")))
            if e.get("error"):
                errors.append(str(e["error"]))
    unfinished = [m for m in started if m not in finished]
    if unfinished:
        why = "killed at the time limit" if timed_out else "the process died"
        errors.append(f"{unfinished[0]}: importing it never finished ({why}): "
                      "code at module level loops or waits")
    return tuple(errors)


def _running(events: list[dict[str, Any]]) -> str:
    done = {e.get("nodeid") for e in events if e.get("e") == "report" and e.get("when") == "teardown"}
    started = [e.get("nodeid") for e in events if e.get("e") == "start"]
    return next((str(n) for n in reversed(started) if n not in done), "")
