"""The journal's records that nobody reads back: one frozen dataclass per kind, written with `RunLog.record`.

Each writes the keys its kind always had (field names are the keys, in order). Read back, they are an
`Other` (crew/journal/events.py holds the kinds that are read, and the base `Event`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crew.journal.events import Event, optional

if TYPE_CHECKING:
    from crew.monitor.alerts import Alert

# ------------------------------------------------------------------------------------ answers and attempts


@dataclass(frozen=True, kw_only=True)
class Answer(Event):
    event: str = field(default="answer", init=False)
    task: str
    attempt: int
    text: str  # cut to ANSWER_LOG_CHARS


@dataclass(frozen=True, kw_only=True)
class NoModule(Event):
    event: str = field(default="no_module", init=False)
    attempt: int


@dataclass(frozen=True, kw_only=True)
class SkeletonChanged(Event):
    """An implement attempt that renamed, dropped or re-parameterised the task's class skeleton."""

    event: str = field(default="skeleton_changed", init=False)
    attempt: int
    problems: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StubAnswer(Event):
    event: str = field(default="stub_answer", init=False)
    attempt: int
    functions: tuple[str, ...]  # that only repeat their signature


@dataclass(frozen=True, kw_only=True)
class DraftFailed(Event):
    event: str = field(default="draft_failed", init=False)
    attempt: int
    why: str


@dataclass(frozen=True, kw_only=True)
class AttemptUnusable(Event):
    event: str = field(default="attempt_unusable", init=False)
    task: str
    attempt: int
    why: str


@dataclass(frozen=True, kw_only=True)
class SecondOpinion(Event):
    event: str = field(default="second_opinion", init=False)
    attempt: int
    summary: str
    usable: bool
    examples_passed: int
    examples_total: int
    reused: bool = False  # an attempt the consensus had asked already, not a new request


@dataclass(frozen=True, kw_only=True)
class SecondOpinionsUndecided(Event):
    event: str = field(default="second_opinions_undecided", init=False)
    voters: int
    failing: tuple[str, ...]  # the failing tests' names


@dataclass(frozen=True, kw_only=True)
class ConsensusSkipped(Event):
    event: str = field(default="consensus_skipped", init=False)
    why: str


@dataclass(frozen=True, kw_only=True)
class Consensus(Event):
    """The attempts compared on the tests' calls: per candidate (the module first) its results, tests passed
    and whether it may vote; the chosen candidate and those that behave like it (None: none chosen)."""

    event: str = field(default="consensus", init=False)
    calls: tuple[str, ...]
    candidates: int
    results: tuple[tuple[str | None, ...], ...]
    tests_passed: tuple[int, ...]
    usable: tuple[bool, ...]
    chosen: int | None
    cluster: tuple[int, ...] | None
    elsewhere_calls: tuple[str, ...] = ()  # calls no test makes (probes.variants), and per candidate its results
    elsewhere: tuple[tuple[str | None, ...], ...] = ()
    rivals: tuple[int, ...] = ()  # alike on the tests' calls, not on those


@dataclass(frozen=True, kw_only=True)
class ConsensusAdopted(Event):
    event: str = field(default="consensus_adopted", init=False)
    attempt: int
    agreeing: int  # attempts that behave like it


# ------------------------------------------------------------------------------------ tests and the module


@dataclass(frozen=True, kw_only=True)
class NewBest(Event):
    event: str = field(default="best", init=False)
    round: int
    score: tuple[int, ...]  # crew/run/ledger.py `score`


@dataclass(frozen=True, kw_only=True)
class ModuleRestored(Event):
    event: str = field(default="module_restored", init=False)
    task: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class SpecFallback(Event):
    event: str = field(default="spec_fallback", init=False)
    why: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TestsRejected(Event):
    event: str = field(default="tests_rejected", init=False)
    why: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FixStopped(Event):
    event: str = field(default="fix_stopped", init=False)
    round: int
    why: str


@dataclass(frozen=True)
class ExampleCase:
    call: str
    expected: str
    kind: str  # "equals" | "raises"


@dataclass(frozen=True, kw_only=True)
class ExamplesWritten(Event):
    """The task's own examples as acceptance tests (`file`), or a note that it states none."""

    event: str = field(default="examples", init=False)
    count: int
    file: str = optional("")
    examples: tuple[ExampleCase, ...] = optional(())
    note: str = optional("")


# ------------------------------------------------------------------------------------ files


@dataclass(frozen=True, kw_only=True)
class FilesDropped(Event):
    event: str = field(default="files_dropped", init=False)
    agent: str
    paths: tuple[str, ...]
    why: str


@dataclass(frozen=True, kw_only=True)
class FileSkipped(Event):
    event: str = field(default="file_skipped", init=False)
    agent: str
    path: str
    why: str


@dataclass(frozen=True, kw_only=True)
class FileRefused(Event):
    event: str = field(default="file_refused", init=False)
    agent: str
    path: str
    why: str


@dataclass(frozen=True, kw_only=True)
class FileRenamed(Event):
    event: str = field(default="file_renamed", init=False)
    agent: str
    path: str
    to: str


@dataclass(frozen=True, kw_only=True)
class TaskImportsAdded(Event):
    event: str = field(default="task_imports_added", init=False)
    path: str
    imports: tuple[str, ...]


# ------------------------------------------------------------------------------------ the run


@dataclass(frozen=True, kw_only=True)
class AskedAhead(Event):
    """A task's first request sent before CrewAI reached the task (crew/run/overlap.py)."""

    event: str = field(default="asked_ahead", init=False)
    task: str
    agent: str
    sent: bool
    why: str = ""


@dataclass(frozen=True, kw_only=True)
class TaskStarted(Event):
    event: str = field(default="task_started", init=False)
    task: str


@dataclass(frozen=True)
class PlannedAgent:
    model: str
    placement: str          # gpu | split | cpu | api
    gpus: tuple[int, ...]   # GPU indices
    num_ctx: int


@dataclass(frozen=True, kw_only=True)
class PlanChosen(Event):
    event: str = field(default="plan", init=False)
    source: str
    simulated: bool
    agents: dict[str, PlannedAgent]  # by agent name


@dataclass(frozen=True)
class AgentUsage:
    name: str
    model: str
    device: str
    server: str
    prompt_tokens: int
    completion_tokens: int
    calls: int
    wall_s: float


@dataclass(frozen=True, kw_only=True)
class Usage(Event):
    """This part of the run's own counters, per agent."""

    event: str = field(default="usage", init=False)
    agents: tuple[AgentUsage, ...]


@dataclass(frozen=True, kw_only=True)
class RunStopped(Event):
    event: str = field(default="run_stopped", init=False)
    error: str  # the error's one line


@dataclass(frozen=True, kw_only=True)
class ReportWritten(Event):
    event: str = field(default="report", init=False)
    path: str
    ok: bool
    rounds: int
    verdict: str = ""  # crew/run/verdict.py KINDS ("" in runs written before verdicts had kinds)


@dataclass(frozen=True, kw_only=True)
class AssumedAsked(Event):
    """Examples the manager assumed for a task that states none (crew/run/assumed.py), before any code."""

    event: str = field(default="assumed_examples", init=False)
    examples: tuple[ExampleCase, ...]
    answer: str                   # the manager's answer, cut to ANSWER_LOG_CHARS
    seconds: float


@dataclass(frozen=True, kw_only=True)
class AssumedChecked(Event):
    """Each assumed example against the independent attempts: how many agree, and whether it joined the tests."""

    event: str = field(default="assumed_checked", init=False)
    calls: tuple[str, ...]
    agreeing: tuple[int, ...]
    attempts: int
    accepted: tuple[str, ...]
    file: str = optional("")
    dropped_tests: tuple[str, ...] = optional(())  # model-written tests that contradicted an accepted one


@dataclass(frozen=True, kw_only=True)
class VerdictReached(Event):
    """The verdict's kind and the independent attempts it rests on (crew/run/verdict.py)."""

    event: str = field(default="verdict", init=False)
    kind: str
    attempts: int
    agreeing: int
    disputed: tuple[str, ...] = ()
    undisputed: tuple[str, ...] = ()
    unsettled: tuple[str, ...] = ()
    alone: str = ""  # how the other attempts went, when none behaves like the code (pass-unreproduced)
    split: tuple[str, ...] = optional(())  # the tests' calls the attempts split on (pass-split)


@dataclass(frozen=True, kw_only=True)
class GpuAlert(Event):
    """One shape for the crew run's sampler and `plan-gpus monitor --log`."""

    event: str = field(default="gpu_alert", init=False)
    gpu: int
    kind: str  # vram | temp | util
    value: float
    limit: float
    message: str

    @classmethod
    def of(cls, alert: Alert) -> GpuAlert:
        return cls(gpu=alert.gpu_index, kind=alert.kind, value=alert.value, limit=alert.limit, message=alert.message)


# ------------------------------------------------------------------------------------ serving


@dataclass(frozen=True, kw_only=True)
class ServerReused(Event):
    event: str = field(default="server_reused", init=False)
    server: str
    port: int


@dataclass(frozen=True, kw_only=True)
class ServerReady(Event):
    event: str = field(default="server_ready", init=False)
    server: str
    pid: int
    port: int
    models: tuple[str, ...]  # aliases
    seconds: float
    host: str | None = optional(None)      # a server on another node: its machine
    node_log: str | None = optional(None)  # and its log there


@dataclass(frozen=True, kw_only=True)
class ServersReady(Event):
    event: str = field(default="servers_ready", init=False)
    seconds: float


@dataclass(frozen=True, kw_only=True)
class ResidencyChecked(Event):
    """A llama.cpp server's load log against the plan (crew/serving/llamacpp_residency.py)."""

    event: str = field(default="residency", init=False)
    server: str
    planned_bytes: int
    reported_bytes: int
    device_bytes: int
    host_model_bytes: int
    simulated: bool


@dataclass(frozen=True, kw_only=True)
class ResidencyWarning(Event):
    event: str = field(default="residency_warning", init=False)
    text: str
