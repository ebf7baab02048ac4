"""The journal's records as the run reads them back: one frozen dataclass per kind that is read, one parser.

`parse` is the only place that looks into a record's keys; report, resume and restore read these types.
A record of a kind nobody reads back is an `Other` (its event name kept). A record written by an older
version that lacks a field gets the field's default: a run logged before a field existed still resumes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    event: str


@dataclass(frozen=True)
class Start(Event):
    """A part of the run began: `kickoff` (a fresh run), `resume`, `replay`."""

    inputs: dict[str, str] = field(default_factory=dict)


START_EVENTS = ("kickoff", "resume", "replay")


@dataclass(frozen=True)
class TaskDone(Event):
    task: str = ""
    agent: str = ""
    description: str = ""
    raw: str = ""
    module_sha256: str = ""   # the module as the task left it (crew/run/ledger.py checkpoints)
    skipped: bool = False     # a stub for a task that never ran (fix_code when the tests passed)


@dataclass(frozen=True)
class TestsRound(Event):
    round: int = 0
    label: str = ""
    task: str = "write_tests"
    ok: bool = False
    report: dict[str, Any] = field(default_factory=dict)
    examples_passed: int = 0
    examples_total: int = 0
    model_passed: int = 0
    model_total: int = 0


@dataclass(frozen=True)
class FilesWritten(Event):
    agent: str = ""
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileChange(Event):
    """tests_repaired (`changes`), tests_dropped (`why`), import_time_code_removed (`lines`)."""

    path: str = ""
    changes: tuple[str, ...] = ()
    why: str = ""
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Numbered(Event):
    """best_restored (`round`), second_opinion_adopted (`attempt`)."""

    round: int = 0
    attempt: int = 0


@dataclass(frozen=True)
class LlmCall(Event):
    agent: str = ""
    seconds: float = 0.0
    prompt_tokens_so_far: int = 0
    completion_tokens_so_far: int = 0


@dataclass(frozen=True)
class ServingFault(Event):
    text: str = ""
    action: str = "fault"
    agent: str = "?"
    server: str = "?"


@dataclass(frozen=True)
class Other(Event):
    pass


def _s(rec: dict[str, Any], key: str, default: str = "") -> str:
    value = rec.get(key)
    return default if value is None else str(value)


def _i(rec: dict[str, Any], key: str) -> int:
    try:
        return int(rec.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _strs(rec: dict[str, Any], key: str) -> tuple[str, ...]:
    value = rec.get(key)
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def parse(rec: dict[str, Any]) -> Event:
    """One record of run.jsonl, typed."""
    kind = _s(rec, "event")
    if kind in START_EVENTS:
        inputs = rec.get("inputs")
        return Start(kind, {str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {})
    if kind == "task_done":
        return TaskDone(kind, task=_s(rec, "task"), agent=_s(rec, "agent"), description=_s(rec, "description"),
                        raw=_s(rec, "raw"), module_sha256=_s(rec, "module_sha256"),
                        skipped=bool(rec.get("skipped", False)))
    if kind == "tests" and isinstance(rec.get("report"), dict):
        return TestsRound(kind, round=_i(rec, "round"), label=_s(rec, "label"),
                          task=_s(rec, "task") or "write_tests", ok=bool(rec.get("ok")), report=dict(rec["report"]),
                          examples_passed=_i(rec, "examples_passed"), examples_total=_i(rec, "examples_total"),
                          model_passed=_i(rec, "model_passed"), model_total=_i(rec, "model_total"))
    if kind == "files_written":
        return FilesWritten(kind, agent=_s(rec, "agent"), paths=_strs(rec, "paths"))
    if kind in ("tests_repaired", "tests_dropped", "import_time_code_removed"):
        return FileChange(kind, path=_s(rec, "path"), changes=_strs(rec, "changes"), why=_s(rec, "why"),
                          lines=_strs(rec, "lines"))
    if kind in ("best_restored", "second_opinion_adopted"):
        return Numbered(kind, round=_i(rec, "round"), attempt=_i(rec, "attempt"))
    if kind == "llm_call" and isinstance(rec.get("agent"), str):
        try:
            seconds = float(rec.get("seconds") or 0.0)
        except (TypeError, ValueError):
            seconds = 0.0
        return LlmCall(kind, agent=rec["agent"], seconds=seconds,
                       prompt_tokens_so_far=_i(rec, "prompt_tokens_so_far"),
                       completion_tokens_so_far=_i(rec, "completion_tokens_so_far"))
    if kind == "serving_fault":
        return ServingFault(kind, text=_s(rec, "text"), action=_s(rec, "action", "fault"),
                            agent=_s(rec, "agent", "?"), server=_s(rec, "server", "?"))
    return Other(kind)


def typed(records: Iterable[dict[str, Any]]) -> list[Event]:
    return [parse(r) for r in records]


def of_kind(events: Iterable[Event], *kinds: str) -> list[Any]:
    """The events of these kinds, in order (typed as their class)."""
    return [e for e in events if e.event in kinds]
