"""What one run knows while it works: its folders, its log, and the real test verdict of every round.

`RunState` holds the run: folders, log, files written, every test round. The guardrails act on it and import
it (never the other way round): `crew/run/guardrails.py` binds them to one run for CrewAI, `crew/run/guards.py`
(specify, write_tests, fix_code, document), `crew/run/attempts.py` (implement's attempts against the user's
examples, and the best round kept), `crew/run/second_opinion.py` (independent attempts that judge code vs
model-written tests). The same logic serves `crewai run`, `crewai replay` and `localcrew resume`.
"""

# No `from __future__ import annotations` here: CrewAI inspects the guardrails' return annotations at
# runtime and accepts only a real tuple[bool, Any].
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crew.errors import WorkspaceError
from crew.run.runlog import RunLog
from crew.tools import answers, examples, feedback
from crew.tools.codeblocks import CodeFile, extract_code_files, extract_files
from crew.tools.examples import Example
from crew.tools.sandbox import SandboxLimits, TestReport, run_pytest
from crew.tools.workspace import Workspace

Progress = Callable[[str], None]


@dataclass
class RunState:
    run_dir: Path
    module: str
    max_fix_rounds: int
    limits: SandboxLimits
    progress: Progress = print
    task: str = ""                 # the user's project task, verbatim: the ground truth every check goes back to
    implement_rounds: int = 3      # attempts at the code against the user's examples before tests are written
    rounds: list[TestReport] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)        # per round: which step ran it
    written: dict[str, str] = field(default_factory=dict)   # path -> agent that last wrote it
    attempts: dict[str, int] = field(default_factory=dict)
    # An attempt at the module by the developer's model asked directly — the implement prompt plus an optional
    # note, greedy or sampled hotter, seed k of its own: (k, greedy, note) -> the raw answer. Set by the run.
    draft: Callable[[int, bool, str], str] | None = None
    second_opinions: int = 2       # independent attempts asked when only model-written tests fail
    consensus_samples: int = 0     # attempts compared with the code on the tests' calls once tests exist

    # Set from the fields when the run opens (__post_init__):
    workspace: Workspace = field(init=False, repr=False)
    log: RunLog = field(init=False, repr=False)
    functions: list[str] = field(init=False)             # the task's function names
    examples: list[Example] = field(init=False)          # the task's own examples: ground truth
    under_test: set[str] = field(init=False)             # names a test file must import, never define
    # What the run has done so far:
    best: tuple[tuple[int, ...], int, str] | None = field(default=None, init=False)  # (score, round, module source)
    fix_rounds_done: int = field(default=0, init=False)
    stopped_early: str = field(default="", init=False)
    refusals: list[str] = field(default_factory=list, init=False)  # the last answer's refused files, and why
    drafts_asked: int = field(default=0, init=False)  # direct requests for an attempt so far: each one's seed

    def __post_init__(self) -> None:
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.workspace = Workspace(self.code_dir)
        self.log = RunLog(self.run_dir / "run.jsonl")
        self.functions = examples.function_names(self.task)
        self.examples = examples.extract_examples(self.task, self.functions)
        self.under_test = set(self.functions) | set(examples.class_names(self.task))

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
        return self.rounds[-1] if self.rounds else None

    def needs_fix(self, _previous: Any = None) -> bool:
        return self.max_fix_rounds > 0 and self.last is not None and not self.last.ok

    def task_done(self, name: str, output: Any) -> None:
        """Logged as each task finishes, so an interrupted run resumes after its last finished task."""
        self.log.append("task_done", task=name, agent=getattr(output, "agent", ""),
                        description=getattr(output, "description", ""), raw=getattr(output, "raw", ""))

    def restore(self, *, before_task: str | None = None) -> list[dict[str, Any]]:
        """Rebuild the test rounds from the log (for resume/replay); return the finished tasks, in order.

        Only rounds of finished tasks count (crew.run.runlog.settled): a task interrupted between its `tests`
        record and its `task_done` runs again with its rounds, which are then counted once. With
        `before_task`, only what happened before that task counts: replaying write_tests forgets every
        test round, replaying fix_code forgets the fix rounds.
        """
        from crew.config import TASK_NAMES
        from crew.run.runlog import settled

        steps = settled(self.log.records(), TASK_NAMES, before=before_task)
        self.rounds.clear()
        self.labels.clear()
        for rec in steps.rounds:
            n = len(self.rounds) + 1
            out_file = self.run_dir / f"pytest-round-{rec.get('round', n)}.txt"
            output = out_file.read_text(encoding="utf-8", errors="replace") if out_file.exists() else ""
            self.rounds.append(report_from_dict(rec["report"], output))
            self.labels.append(str(rec.get("label", "")))
        self.fix_rounds_done = sum(1 for rec in steps.rounds if rec.get("task") == "fix_code")
        for rec in self.log.of("files_written"):  # who wrote what, for the report's "where the tests came from"
            for path in rec.get("paths", []):
                self.written[str(path)] = str(rec.get("agent", ""))
        # The code on disk is the newest kept round's: it is the best known from here on.
        self.best = (self.score(self.rounds[-1]), len(self.rounds), self.module_source()) if self.rounds else None
        return steps.finished

    # ------------------------------------------------------------------------------------ files

    def write_examples(self) -> None:
        """test_examples.py from the task's own examples — written by the system, before any agent works."""
        if not self.examples:
            self.log.append("examples", count=0, note="the task states no example; only model-written tests")
            return
        self.workspace.write_text(examples.EXAMPLES_FILE, examples.render_tests(self.module_name, self.examples))
        self.written[examples.EXAMPLES_FILE] = "system"
        self.log.append("examples", count=len(self.examples), file=examples.EXAMPLES_FILE,
                        examples=[{"call": e.call, "expected": e.expected, "kind": e.kind} for e in self.examples])
        self.progress(f"  {len(self.examples)} acceptance test(s) from the task's own examples → "
                      f"{examples.EXAMPLES_FILE}")

    def write_files(self, agent: str, text: str, *, keep: Callable[[CodeFile], CodeFile | None],
                    default_name: str | None) -> list[str]:
        """Extract fenced files from an answer and write those `keep` accepts; refusals are logged."""
        saved = []
        self.refusals = []
        found = extract_files(text, default_name=default_name)
        if found.dropped:
            self.log.append("files_dropped", agent=agent, paths=list(found.dropped), why="too many files in one answer")
            self.progress(f"[yellow]  {len(found.dropped)} more file(s) in the answer dropped: at most "
                          f"{len(found.files)} per answer[/]")
        for cf in found.files:
            accepted = keep(cf)
            if accepted is None:
                self.log.append("file_skipped", agent=agent, path=cf.path, why="not this agent's file")
                continue
            try:
                self.workspace.write_text(accepted.path, accepted.content)
            except WorkspaceError as err:
                self.log.append("file_refused", agent=agent, path=cf.path, why=err.one_line())
                self.progress(f"[yellow]refused {cf.path}: {err.what}[/]")
                self.refusals.append(f"{cf.path}: {err.what}" + (f" ({err.fix})" if err.fix else ""))
                continue
            self.written[accepted.path] = agent
            saved.append(accepted.path)
        if saved:
            self.log.append("files_written", agent=agent, paths=saved)
            self.progress(f"  wrote {', '.join(saved)}")
        return saved

    def code_only(self, cf: CodeFile) -> CodeFile | None:
        return None if Path(cf.path).name.startswith("test_") or not cf.path.endswith(".py") else cf

    def tests_only(self, cf: CodeFile) -> CodeFile | None:
        if cf.path == self.module or not cf.path.endswith(".py"):
            return None  # the tester never overwrites the code under test
        name = Path(cf.path).name
        if name == examples.EXAMPLES_FILE:  # the user's examples are the system's file, never a model's
            return CodeFile(path=self.test_file, content=cf.content)
        return cf if name.startswith("test_") else CodeFile(path=f"test_{name}", content=cf.content)

    def docs_only(self, cf: CodeFile) -> CodeFile | None:
        return cf if cf.path.endswith(".md") else None

    def write_module(self, answer: str) -> bool:
        """The developer's module from an answer: the one python block is the module even when misnamed;
        statements that run at import time (prints, test calls) are removed and logged."""
        files = [cf for cf in extract_code_files(answer, default_name=self.module) if self.code_only(cf)]
        if files and all(cf.path != self.module for cf in files) and len(files) == 1:
            self.log.append("file_renamed", agent="developer", path=files[0].path, to=self.module)
            answer = f"```python\n# file: {self.module}\n{files[0].content}```\n"
        saved = self.write_files("developer", answer, keep=self.code_only, default_name=self.module)
        if self.module not in saved:
            return False
        source = self.workspace.read_text(self.module)
        kept, removed = answers.without_import_time_code(source)
        kept, added = answers.with_task_imports(kept, self.task)
        if added:
            self.log.append("task_imports_added", path=self.module, imports=added)
            self.progress(f"  added import(s) the module lacked: {'; '.join(added)}")
        if removed or added:
            self.workspace.write_text(self.module, kept)
        if removed:
            lines = [f"line {r.lineno}: {r.text.splitlines()[0][:80]}" for r in removed]
            self.log.append("import_time_code_removed", path=self.module, lines=lines)
            self.progress(f"  removed {len(removed)} statement(s) that ran at import: {lines[0]}"
                          + (" …" if len(lines) > 1 else ""))
        return True

    # ------------------------------------------------------------------------------------ tests

    def run_tests(self, label: str, task: str) -> TestReport:
        self.progress(f"  running pytest ({label}) …")
        report = run_pytest(self.code_dir, limits=self.limits)  # includes the syntax/import check
        self.rounds.append(report)
        self.labels.append(label)
        n = len(self.rounds)
        (self.run_dir / f"pytest-round-{n}.txt").write_text(report.output, encoding="utf-8")
        fields = {k: v for k, v in asdict(report).items() if k != "output"}
        sp = feedback.split(report, len(self.examples))
        self.log.append("tests", round=n, label=label, ok=report.ok, summary=report.summary(),
                        task=task, report=fields, examples_passed=sp.examples_passed,
                        examples_total=sp.examples_total, model_passed=sp.model_passed, model_total=sp.model_total)
        colour = "green" if report.ok else "red"
        origin = (f" — user examples {sp.examples_passed}/{sp.examples_total}, model-written "
                  f"{sp.model_passed}/{sp.model_total}") if self.examples else ""
        self.progress(f"  [{colour}]round {n}: {report.summary()}{origin}[/]")
        return report

    def score(self, report: TestReport) -> tuple[int, ...]:
        """Better code first passes more of the user's examples, then more tests in all."""
        sp = feedback.split(report, len(self.examples))
        return (int(report.ok), sp.examples_passed, sp.examples_passed + sp.model_passed, -len(report.import_errors))

    def feedback_on(self, report: TestReport) -> str:
        return feedback.compact(report, module=self.module)

    def module_source(self) -> str:
        """The module as it is now; empty when the developer never wrote one."""
        try:
            return self.workspace.read_text(self.module)
        except (WorkspaceError, OSError):
            return ""

    def module_block(self) -> str:
        code = self.module_source()
        if not code:
            return "(no module was written)"
        return f"```python\n# file: {self.module}\n{code.rstrip()}\n```"

    # ------------------------------------------------------------------------------------ for the report

    def round_notes(self) -> list[str]:
        """Per round: the step that ran it, and how the user's examples and the model's tests fared."""
        out = []
        for label, rec in zip(self.labels or [""] * len(self.rounds), self.log.of("tests")[-len(self.rounds):],
                              strict=False):
            origin = ""
            if rec.get("examples_total"):
                origin = (f" — user examples {rec['examples_passed']}/{rec['examples_total']}, "
                          f"model-written {rec.get('model_passed', 0)}/{rec.get('model_total', 0)}")
            out.append(f"{label or rec.get('label', '')}{origin}")
        return out

    def tests_origin(self) -> list[str]:
        lines = []
        if self.examples:
            lines.append(f"`{examples.EXAMPLES_FILE}`: {len(self.examples)} test(s) written by localcrew from the "
                         "examples in the task (ground truth): " + "; ".join(f"`{e.call}` → `{e.expected}`"
                                                                             for e in self.examples[:8]))
        else:
            lines.append("the task states no example, so every test is model-written")
        model_files = sorted(p for p, who in self.written.items() if who == "tester")
        if model_files:
            lines.append(", ".join(f"`{p}`" for p in model_files) + ": written by the tester (a model) — evidence, "
                         "not truth")
        for rec in self.log.of("tests_repaired"):
            lines.append(f"`{rec.get('path')}` repaired by localcrew: {'; '.join(rec.get('changes', []))}")
        for rec in self.log.of("tests_dropped"):
            lines.append(f"`{rec.get('path')}` dropped: {rec.get('why')}")
        return lines

    def notes(self) -> list[str]:
        out = []
        for rec in self.log.of("import_time_code_removed"):
            out.append(f"removed from `{rec.get('path')}` (ran at import): {', '.join(rec.get('lines', []))}")
        for rec in self.log.of("best_restored"):
            out.append(f"the code of round {rec.get('round')} (the best) was restored and tested again")
        if self.stopped_early:
            out.append(f"the fix loop stopped early: {self.stopped_early}")
        for rec in self.log.of("second_opinion_adopted"):
            out.append(f"only model-written tests failed; independent attempt {rec.get('attempt')} by the "
                       "developer's model passed every test and replaced the module")
        if self.log.of("spec_fallback"):
            out.append("the manager's specification was unusable; the task text served as the specification")
        return out

    # ------------------------------------------------------------------------------------ guardrails

    def once_more(self, key: str, limit: int = 1) -> bool:
        n = self.attempts.get(key, 0)
        self.attempts[key] = n + 1
        return n < limit


def report_from_dict(d: dict[str, Any], output: str) -> TestReport:
    from crew.tools.sandbox import TestFailure

    fields = dict(d)
    fields["failures"] = tuple(TestFailure(**f) for f in fields.get("failures", ()))
    fields["import_errors"] = tuple(fields.get("import_errors", ()))
    fields["passed_ids"] = tuple(fields.get("passed_ids", ()))
    return TestReport(**fields, output=output)
