"""What one run knows while it works: its folders, its log, and the real test verdict of every round.

`RunState` holds the run: folders, log, files written, every test round. The guardrails act on it and import
it (never the other way round): guardrails.py binds them to one run for CrewAI, handlers.py (specify, write_tests,
fix_code, document), attempts.py (implement's attempts against the user's examples, the best round kept),
second_opinion.py (attempts that judge code vs model tests). It serves `crewai run`, replay and resume.
"""

# No `from __future__ import annotations` here: CrewAI inspects the guardrails' return annotations at
# runtime and accepts only a real tuple[bool, Any].
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from crew.answers import answers, examples, feedback, probes
from crew.answers.assumed import ASSUMED_FILE
from crew.answers.assumed import report_lines as assumed_lines
from crew.answers.codeblocks import CodeFile, extract_code_files, extract_files
from crew.answers.examples import Example
from crew.answers.task import ParsedTask as ParsedTask  # the run reads the task once
from crew.errors import WorkspaceError
from crew.journal import records
from crew.journal.events import Event, FilesWritten, ImportTimeCodeRemoved, TaskDone, TestsRound, of_kind
from crew.journal.log import RunLog
from crew.run.ledger import Best, Ledger
from crew.run.steps import Knobs, step
from crew.sandbox import SandboxLimits, TestReport
from crew.sandbox.workspace import Workspace

Progress = Callable[[str], None]


@dataclass
class Tally:
    """What the guardrails have counted so far in this run (not the test rounds: those are the ledger's)."""

    asked_again: dict[str, int] = field(default_factory=dict)  # per reason: times a task was sent back
    drafts_asked: int = 0      # direct requests for an attempt so far: each one's seed
    fix_rounds_done: int = 0
    stopped_early: str = ""    # why the fix loop stopped before its budget, if it did
    refusals: list[str] = field(default_factory=list)  # the last answer's refused files, and why
    # Attempts from the task alone (consensus, second opinions, the verdict's; never the code itself) run on the
    # final tests, and the consensus's doubts about the code it chose: how sure the verdict is (verdict.py).
    independent: list[str] = field(default_factory=list)
    doubts: probes.Doubts = probes.Doubts()
    ahead: list[Future[str]] = field(default_factory=list)  # attempts asked when the crew started, not yet taken
    # The manager's assumed examples (assumed.py): the answer, awaited by write_tests; each one's check.
    assumed_answer: Callable[[], str] | None = None
    assumed_seconds: float = 0.0
    assumed_checks: list[Any] = field(default_factory=list)

    def adopted(self, code: str) -> None:  # an attempt became the code: no longer independent of it
        if code in self.independent:
            self.independent.remove(code)


@dataclass
class RunState:
    run_dir: Path
    module: str
    knobs: Knobs                   # the workflow's budgets (tasks.yaml `workflow:`; crew/run/steps.py)
    sandbox_limits: InitVar[SandboxLimits]  # handed to the ledger, which runs every pytest
    progress: Progress = print
    task: str = ""                 # the user's project task, verbatim: the ground truth every check goes back to
    written: dict[str, str] = field(default_factory=dict)   # path -> agent that last wrote it
    # An attempt at the module by the developer's model asked directly — the implement prompt plus an optional
    # note, greedy or sampled hotter, seed k of its own: (k, greedy, note) -> the raw answer. Set by the run.
    draft: Callable[[int, bool, str], str] | None = None

    # Set from the fields when the run opens (__post_init__):
    ledger: Ledger = field(init=False, repr=False)        # the test rounds; the only writer of the module
    parsed: "ParsedTask" = field(init=False)             # the task read once: names, examples
    tally: Tally = field(default_factory=Tally, init=False)  # what the run has counted so far

    def __post_init__(self, sandbox_limits: SandboxLimits) -> None:
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.parsed = ParsedTask.parse(self.task)
        self.ledger = Ledger(run_dir=self.run_dir, module=self.module, workspace=Workspace(self.code_dir),
                             log=RunLog(self.run_dir / "run.jsonl"),
                             limits=sandbox_limits, progress=self.progress, examples_count=len(self.examples))

    @property
    def workspace(self) -> Workspace:
        return self.ledger.workspace

    @property
    def limits(self) -> SandboxLimits:
        return self.ledger.limits

    @property
    def log(self) -> RunLog:  # the run's journal (the ledger writes its rounds there too)
        return self.ledger.log

    @log.setter
    def log(self, value: RunLog) -> None:
        self.ledger.log = value

    @property
    def rounds(self) -> list[TestReport]:
        return self.ledger.rounds

    @property
    def labels(self) -> list[str]:
        return self.ledger.labels

    @property
    def best(self) -> Best | None:
        return self.ledger.best

    @best.setter
    def best(self, value: Best | None) -> None:
        self.ledger.best = value

    @property
    def functions(self) -> list[str]:  # the task's function names
        return list(self.parsed.functions)

    @property
    def examples(self) -> list[Example]:  # the task's own examples: ground truth
        return list(self.parsed.examples)

    @property
    def classes(self) -> list[str]:
        return list(self.parsed.classes)

    @property
    def methods(self) -> list[str]:  # the methods of the task's classes (their skeleton's `def`s)
        return list(self.parsed.methods)

    @property
    def under_test(self) -> set[str]:  # names a test file must import, never define
        return set(self.parsed.functions) | set(self.parsed.classes)

    @property
    def max_fix_rounds(self) -> int:
        return self.knobs.max_fix_rounds

    @property
    def implement_rounds(self) -> int:  # attempts at the code against the user's examples before tests
        return self.knobs.implement_rounds

    @property
    def second_opinions(self) -> int:  # independent attempts asked when only model-written tests fail
        return self.knobs.second_opinions

    @property
    def consensus_samples(self) -> int:  # attempts compared with the code on the tests' calls
        return self.knobs.consensus_samples

    @property
    def module_name(self) -> str:
        return self.module[:-3]

    @property
    def code_dir(self) -> Path:
        return self.run_dir / "code"

    @property
    def test_file(self) -> str:
        return f"test_{self.module}"

    @property
    def last(self) -> TestReport | None:
        return self.ledger.last

    def needs_fix(self, _previous: Any = None) -> bool:
        return self.max_fix_rounds > 0 and self.last is not None and not self.last.ok

    def task_done(self, name: str, output: Any) -> None:
        """Logged as each task finishes, so an interrupted run resumes after its last finished task; the
        module as the task leaves it is checkpointed first (ledger.py), and resume puts it back."""
        sha = self.ledger.checkpoint(name)
        self.log.record(TaskDone(task=name, agent=getattr(output, "agent", ""),
                                 description=getattr(output, "description", ""), raw=getattr(output, "raw", ""),
                                 module_sha256=sha))

    def restore(self, *, before_task: str | None = None) -> list[TaskDone]:
        """Rebuild the test rounds from the log (for resume/replay); return the finished tasks, in order.

        Only rounds of finished tasks count (crew.journal.log.settled): a task interrupted between its `tests`
        record and its `task_done` runs again with its rounds, which are then counted once. With
        `before_task`, only what happened before that task counts: replaying write_tests forgets every
        test round, replaying fix_code forgets the fix rounds.
        """
        from crew.config import TASK_NAMES
        from crew.journal.log import settled

        events = self.log.read()
        steps = settled(events, TASK_NAMES, before=before_task)
        self.rounds.clear()
        self.labels.clear()
        for rec in steps.rounds:
            n = len(self.rounds) + 1
            out_file = self.run_dir / f"pytest-round-{rec.round or n}.txt"
            output = out_file.read_text(encoding="utf-8", errors="replace") if out_file.exists() else ""
            self.rounds.append(report_from_dict(rec.report, output))
            self.labels.append(rec.label)
        self.tally.fix_rounds_done = sum(1 for rec in steps.rounds if rec.task == "fix_code")
        for fw in of_kind(events, "files_written"):  # who wrote what, for the report's "where the tests came from"
            for path in fw.paths:
                self.written[path] = fw.agent
        # The module goes back to what the last finished task left (a kill in the middle of the next task may
        # have left a candidate in code/): that is the code of the newest kept round, the best from here on.
        last = next((t for t in reversed(steps.finished) if t.module_sha256), None)
        if last is not None:
            self.ledger.restore_checkpoint(last.task, last.module_sha256)
        self.best = Best(self.score(self.rounds[-1]), len(self.rounds), self.module_source()) if self.rounds else None
        return steps.finished

    # ------------------------------------------------------------------------------------ files

    def write_examples(self) -> None:
        """test_examples.py from the task's own examples — written by the system, before any agent works."""
        if not self.examples:
            self.log.record(records.ExamplesWritten(count=0,
                                                    note="the task states no example; only model-written tests"))
            return
        self.workspace.write_text(examples.EXAMPLES_FILE, examples.render_tests(self.module_name, self.examples))
        self.written[examples.EXAMPLES_FILE] = "system"
        cases = tuple(records.ExampleCase(e.call, e.expected, e.kind) for e in self.examples)
        self.log.record(records.ExamplesWritten(count=len(self.examples), file=examples.EXAMPLES_FILE, examples=cases))
        self.progress(f"  {len(self.examples)} acceptance test(s) from the task's own examples → "
                      f"{examples.EXAMPLES_FILE}")

    def write_files(self, agent: str, text: str, *, keep: Callable[[CodeFile], CodeFile | None],
                    default_name: str | None) -> list[str]:
        """Extract fenced files from an answer and write those `keep` accepts; refusals are logged."""
        saved = []
        self.tally.refusals = []
        found = extract_files(text, default_name=default_name)
        if found.dropped:
            self.log.record(records.FilesDropped(agent=agent, paths=found.dropped, why="too many files in one answer"))
            self.progress(f"[yellow]  {len(found.dropped)} more file(s) in the answer dropped: at most "
                          f"{len(found.files)} per answer[/]")
        for cf in found.files:
            accepted = keep(cf)
            if accepted is None:
                self.log.record(records.FileSkipped(agent=agent, path=cf.path, why="not this agent's file"))
                continue
            try:
                self.workspace.write_text(accepted.path, accepted.content)
            except WorkspaceError as err:
                self.log.record(records.FileRefused(agent=agent, path=cf.path, why=err.one_line()))
                self.progress(f"[yellow]refused {cf.path}: {err.what}[/]")
                self.tally.refusals.append(f"{cf.path}: {err.what}" + (f" ({err.fix})" if err.fix else ""))
                continue
            self.written[accepted.path] = agent
            saved.append(accepted.path)
        if saved:
            self.log.record(FilesWritten(agent=agent, paths=tuple(saved)))
            self.progress(f"  wrote {', '.join(saved)}")
        return saved

    def code_only(self, cf: CodeFile) -> CodeFile | None:
        return None if Path(cf.path).name.startswith("test_") or not cf.path.endswith(".py") else cf

    def helpers_only(self, cf: CodeFile) -> CodeFile | None:
        """The developer's code files other than the module (which only the ledger writes)."""
        return None if cf.path == self.module else self.code_only(cf)

    def tests_only(self, cf: CodeFile) -> CodeFile | None:
        if cf.path == self.module or not cf.path.endswith(".py"):
            return None  # the tester never overwrites the code under test
        name = Path(cf.path).name
        if name in (examples.EXAMPLES_FILE, ASSUMED_FILE):  # the system's files, never a model's
            return CodeFile(path=self.test_file, content=cf.content)
        return cf if name.startswith("test_") else CodeFile(path=f"test_{name}", content=cf.content)

    def docs_only(self, cf: CodeFile) -> CodeFile | None:
        return cf if cf.path.endswith(".md") else None

    def write_module(self, answer: str) -> bool:
        """The developer's module from an answer: the one python block is the module even when misnamed;
        statements that run at import time (prints, test calls) are removed and logged."""
        files = [cf for cf in extract_code_files(answer, default_name=self.module) if self.code_only(cf)]
        if files and all(cf.path != self.module for cf in files) and len(files) == 1:
            self.log.record(records.FileRenamed(agent="developer", path=files[0].path, to=self.module))
            answer = f"```python\n# file: {self.module}\n{files[0].content}```\n"
        # Other code files of the answer (helper modules) are written as any agent's files; the module
        # itself only through the ledger, cleaned first, in one atomic write.
        self.write_files("developer", answer, keep=self.helpers_only, default_name=self.module)
        module = next((cf for cf in extract_files(answer, default_name=self.module).files
                       if cf.path == self.module), None)
        if module is None:
            return False
        kept, removed = answers.without_import_time_code(module.content)
        kept, added = answers.with_task_imports(kept, self.task)
        try:
            self.ledger.deliver(kept)
        except WorkspaceError as err:
            self.log.record(records.FileRefused(agent="developer", path=self.module, why=err.one_line()))
            self.progress(f"[yellow]refused {self.module}: {err.what}[/]")
            self.tally.refusals.append(f"{self.module}: {err.what}" + (f" ({err.fix})" if err.fix else ""))
            return False
        self.written[self.module] = "developer"
        self.log.record(FilesWritten(agent="developer", paths=(self.module,)))
        self.progress(f"  wrote {self.module}")
        if added:
            self.log.record(records.TaskImportsAdded(path=self.module, imports=tuple(added)))
            self.progress(f"  added import(s) the module lacked: {'; '.join(added)}")
        if removed:
            lines = [f"line {r.lineno}: {r.text.splitlines()[0][:80]}" for r in removed]
            self.log.record(ImportTimeCodeRemoved(path=self.module, lines=tuple(lines)))
            self.progress(f"  removed {len(removed)} statement(s) that ran at import: {lines[0]}"
                          + (" …" if len(lines) > 1 else ""))
        return True

    # ------------------------------------------------------------------------------------ tests

    def run_tests(self, label: str, task: str) -> TestReport:
        return self.ledger.run_tests(label, task)

    def score(self, report: TestReport) -> tuple[int, ...]:
        return self.ledger.score(report)

    def feedback_on(self, report: TestReport) -> str:
        return feedback.compact(report, module=self.module)

    def module_source(self) -> str:
        """The module as it is now; empty when the developer never wrote one."""
        return self.ledger.source()

    def module_block(self) -> str:
        code = self.module_source()
        if not code:
            return "(no module was written)"
        return f"```python\n# file: {self.module}\n{code.rstrip()}\n```"

    # ------------------------------------------------------------------------------------ for the report

    def round_notes(self, events: list[Event] | None = None) -> list[str]:
        """Per round: the step that ran it, and how the user's examples and the model's tests fared."""
        out = []
        rounds: list[TestsRound] = of_kind(self.log.read() if events is None else events, "tests")
        for label, rec in zip(self.labels or [""] * len(self.rounds), rounds[-len(self.rounds):], strict=False):
            origin = ""
            if rec.examples_total:
                origin = (f" — user examples {rec.examples_passed}/{rec.examples_total}, "
                          f"model-written {rec.model_passed}/{rec.model_total}")
            out.append(f"{label or rec.label}{origin}")
        return out

    def tests_origin(self, events: list[Event] | None = None) -> list[str]:
        lines = []
        if self.examples:
            lines.append(f"`{examples.EXAMPLES_FILE}`: {len(self.examples)} test(s) written by localcrew from the "
                         "examples in the task (ground truth): " + "; ".join(f"`{e.call}` → `{e.expected}`"
                                                                             for e in self.examples[:8]))
        else:
            lines.append("the task states no example, so every test is model-written")
        lines += assumed_lines(self.tally.assumed_checks, self.log.read() if events is None else events)
        model_files = sorted(p for p, who in self.written.items() if who == "tester")
        if model_files:
            lines.append(", ".join(f"`{p}`" for p in model_files) + ": written by the tester (a model) — evidence, "
                         "not truth")
        events = self.log.read() if events is None else events
        for ch in of_kind(events, "tests_repaired"):
            lines.append(f"`{ch.path}` repaired by localcrew: {'; '.join(ch.changes)}")
        for ch in of_kind(events, "tests_dropped"):
            lines.append(f"`{ch.path}` dropped: {ch.why}")
        return lines

    def notes(self, events: list[Event] | None = None) -> list[str]:
        out = []
        events = self.log.read() if events is None else events
        for ch in of_kind(events, "import_time_code_removed"):
            out.append(f"removed from `{ch.path}` (ran at import): {', '.join(ch.lines)}")
        for n in of_kind(events, "best_restored"):
            out.append(f"the code of round {n.round} (the best) was restored and tested again")
        if self.tally.stopped_early:
            out.append(f"the fix loop stopped early: {self.tally.stopped_early}")
        for n in of_kind(events, "second_opinion_adopted"):
            out.append(f"only model-written tests failed; independent attempt {n.attempt} by the "
                       "developer's model passed every test and replaced the module")
        if of_kind(events, "spec_fallback"):
            out.append("the manager's specification was unusable; the task text served as the specification")
        return out

    # ------------------------------------------------------------------------------------ guardrails

    def once_more(self, key: str, limit: int = 1) -> bool:
        n = self.tally.asked_again.get(key, 0)
        self.tally.asked_again[key] = n + 1
        return n < limit

    def may_ask_again(self, task: str, key: str) -> bool:
        """Whether `task`'s guardrail may send it back once more for reason `key` (crew/run/steps.py)."""
        return self.once_more(key, step(self.knobs, task).budget(key))


def report_from_dict(d: dict[str, Any], output: str) -> TestReport:
    from crew.sandbox import TestFailure

    fields = dict(d)
    fields["failures"] = tuple(TestFailure(**f) for f in fields.pop("failures", ()))
    fields["import_errors"] = tuple(fields.pop("import_errors", ()))
    fields["passed_ids"] = tuple(fields.pop("passed_ids", ()))
    return TestReport(**fields, output=output)
