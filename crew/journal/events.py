"""The journal's records: one frozen dataclass per kind that is read back, one parser, one serialiser.

A record is written with `RunLog.record(event)` and read back with `parse`: for the kinds here the same class
goes both ways (`parse` of a written record equals it). `parse` is the only place that looks into a record's
keys; report, resume and restore read these types. Kinds that are written but never read back are in
records.py; read, they are an `Other` (their event name kept). A record written by an older version that
lacks a field gets the field's default: a run logged before a field existed still resumes.

A field made with `optional(default)` is written only when its value is not the default: the records that
carried the key only sometimes keep exactly the keys they always had.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

_OMIT = "journal: written only when not the default"


def optional(default: Any) -> Any:
    """A field whose key a record carries only when its value is not `default` (immutable defaults only)."""
    return field(default=default, metadata={_OMIT: True})


@dataclass(frozen=True)
class Event:
    event: str  # the record's kind; fixed (init=False) in a type that has one kind


def fields_of(event: Event) -> dict[str, Any]:
    """A record's keys after `ts` and `event`, in field order, as plain JSON values (tuples as lists)."""
    out: dict[str, Any] = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name == "event" or (f.metadata.get(_OMIT) and value == f.default):
            continue
        out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Start(Event):
    """A part of the run began: `kickoff` (a fresh run), `resume`, `replay`."""

    inputs: dict[str, str] = field(default_factory=dict)


START_EVENTS = ("kickoff", "resume", "replay")


@dataclass(frozen=True)
class TaskDone(Event):
    event: str = field(default="task_done", init=False)
    task: str = ""
    agent: str = ""
    description: str = ""
    raw: str = ""
    module_sha256: str = ""         # the module as the task left it (crew/run/ledger.py checkpoints)
    skipped: bool = optional(False)  # a stub for a task that never ran (fix_code when the tests passed)


@dataclass(frozen=True)
class TestsRound(Event):
    event: str = field(default="tests", init=False)
    round: int = 0
    label: str = ""
    ok: bool = False
    summary: str = ""
    task: str = "write_tests"
    report: dict[str, Any] = field(default_factory=dict)
    examples_passed: int = 0
    examples_total: int = 0
    model_passed: int = 0
    model_total: int = 0


@dataclass(frozen=True)
class FilesWritten(Event):
    event: str = field(default="files_written", init=False)
    agent: str = ""
    paths: tuple[str, ...] = ()
    note: str = optional("")


@dataclass(frozen=True)
class FileChange(Event):
    """What localcrew changed in a file an agent wrote (one subclass per kind)."""

    path: str = ""


@dataclass(frozen=True)
class TestsRepaired(FileChange):
    event: str = field(default="tests_repaired", init=False)
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestsDropped(FileChange):
    event: str = field(default="tests_dropped", init=False)
    why: str = ""


@dataclass(frozen=True)
class ImportTimeCodeRemoved(FileChange):
    event: str = field(default="import_time_code_removed", init=False)
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class BestRestored(Event):
    event: str = field(default="best_restored", init=False)
    round: int = 0
    path: str = ""


@dataclass(frozen=True)
class SecondOpinionAdopted(Event):
    event: str = field(default="second_opinion_adopted", init=False)
    attempt: int = 0


@dataclass(frozen=True)
class LlmCall(Event):
    event: str = field(default="llm_call", init=False)
    agent: str = ""
    base_url: str = ""
    model: str = ""
    seconds: float = 0.0
    prompt_tokens_so_far: int = 0
    completion_tokens_so_far: int = 0
    started: float = 0.0  # wall clock (epoch seconds) when the request was sent: requests of agents overlap
    ended: float = 0.0
    cut: str = optional("")  # why the answer was stopped while it streamed (crew/answers/runaway.py)


@dataclass(frozen=True)
class ServingFault(Event):
    """A serving fault or failover, its words as the run said them; the rest as each kind of fault has it."""

    event: str = field(default="serving_fault", init=False)
    text: str = ""
    agent: str = optional("?")
    server: str = optional("?")
    action: str = "fault"
    pid: int | None = optional(None)         # restarted: the new server's
    times: int | None = optional(None)       # crashed: how often the server ended
    previous: str | None = optional(None)    # failover: the server the agent left
    returncode: int | None = optional(None)  # how the server ended, where it did
    signal: str | None = optional(None)
    library: str | None = optional(None)
    faulted: bool | None = optional(None)


@dataclass(frozen=True)
class Other(Event):
    pass


def _s(rec: dict[str, Any], key: str, default: str = "") -> str:
    value = rec.get(key)
    return default if value is None else str(value)


def _f(rec: dict[str, Any], key: str) -> float:
    try:
        return float(rec.get(key) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _i(rec: dict[str, Any], key: str) -> int:
    try:
        return int(rec.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _strs(rec: dict[str, Any], key: str) -> tuple[str, ...]:
    value = rec.get(key)
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _maybe_i(rec: dict[str, Any], key: str) -> int | None:
    return _i(rec, key) if rec.get(key) is not None else None


def _maybe_s(rec: dict[str, Any], key: str) -> str | None:
    return _s(rec, key) if rec.get(key) is not None else None


def parse(rec: dict[str, Any]) -> Event:
    """One record of run.jsonl, typed."""
    kind = _s(rec, "event")
    if kind in START_EVENTS:
        inputs = rec.get("inputs")
        return Start(kind, {str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {})
    if kind == "task_done":
        return TaskDone(task=_s(rec, "task"), agent=_s(rec, "agent"), description=_s(rec, "description"),
                        raw=_s(rec, "raw"), module_sha256=_s(rec, "module_sha256"),
                        skipped=bool(rec.get("skipped", False)))
    if kind == "tests" and isinstance(rec.get("report"), dict):
        return TestsRound(round=_i(rec, "round"), label=_s(rec, "label"), ok=bool(rec.get("ok")),
                          summary=_s(rec, "summary"), task=_s(rec, "task") or "write_tests",
                          report=dict(rec["report"]), examples_passed=_i(rec, "examples_passed"),
                          examples_total=_i(rec, "examples_total"), model_passed=_i(rec, "model_passed"),
                          model_total=_i(rec, "model_total"))
    if kind == "files_written":
        return FilesWritten(agent=_s(rec, "agent"), paths=_strs(rec, "paths"), note=_s(rec, "note"))
    if kind == "tests_repaired":
        return TestsRepaired(path=_s(rec, "path"), changes=_strs(rec, "changes"))
    if kind == "tests_dropped":
        return TestsDropped(path=_s(rec, "path"), why=_s(rec, "why"))
    if kind == "import_time_code_removed":
        return ImportTimeCodeRemoved(path=_s(rec, "path"), lines=_strs(rec, "lines"))
    if kind == "best_restored":
        return BestRestored(round=_i(rec, "round"), path=_s(rec, "path"))
    if kind == "second_opinion_adopted":
        return SecondOpinionAdopted(attempt=_i(rec, "attempt"))
    if kind == "llm_call" and isinstance(rec.get("agent"), str):
        try:
            seconds = float(rec.get("seconds") or 0.0)
        except (TypeError, ValueError):
            seconds = 0.0
        return LlmCall(agent=rec["agent"], base_url=_s(rec, "base_url"), model=_s(rec, "model"), seconds=seconds,
                       prompt_tokens_so_far=_i(rec, "prompt_tokens_so_far"),
                       completion_tokens_so_far=_i(rec, "completion_tokens_so_far"),
                       started=_f(rec, "started"), ended=_f(rec, "ended"), cut=_s(rec, "cut"))
    if kind == "serving_fault":
        faulted = rec.get("faulted")
        return ServingFault(text=_s(rec, "text"), agent=_s(rec, "agent", "?"), server=_s(rec, "server", "?"),
                            action=_s(rec, "action", "fault"), pid=_maybe_i(rec, "pid"),
                            times=_maybe_i(rec, "times"), previous=_maybe_s(rec, "previous"),
                            returncode=_maybe_i(rec, "returncode"), signal=_maybe_s(rec, "signal"),
                            library=_maybe_s(rec, "library"), faulted=None if faulted is None else bool(faulted))
    return Other(kind)


def typed(records: Iterable[dict[str, Any]]) -> list[Event]:
    return [parse(r) for r in records]


def of_kind(events: Iterable[Event], *kinds: str) -> list[Any]:
    """The events of these kinds, in order (typed as their class)."""
    return [e for e in events if e.event in kinds]
