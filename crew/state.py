"""What one run knows while it works: its folders, its log, and the real test verdict of every round.

The guardrails that write files and run pytest live here, so the crew definition stays declarative and the
same logic serves `crewai run`, `crewai replay` and `localcrew resume`.
"""

# No `from __future__ import annotations` here: CrewAI inspects the guardrails' return annotations at
# runtime and accepts only a real tuple[bool, Any].
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crew.errors import WorkspaceError
from crew.runlog import RunLog
from crew.tools.codeblocks import CodeFile, extract_code_files
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
    rounds: list[TestReport] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)   # path -> agent that last wrote it
    attempts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.workspace = Workspace(self.code_dir)
        self.log = RunLog(self.run_dir / "run.jsonl")

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

        Only rounds of finished tasks count (crew.runlog.settled): a task interrupted between its `tests`
        record and its `task_done` runs again with its rounds, which are then counted once. With
        `before_task`, only what happened before that task counts: replaying write_tests forgets every
        test round, replaying fix_code forgets the fix rounds.
        """
        from crew.config import TASK_NAMES
        from crew.runlog import settled

        steps = settled(self.log.records(), TASK_NAMES, before=before_task)
        self.rounds.clear()
        for rec in steps.rounds:
            n = len(self.rounds) + 1
            out_file = self.run_dir / f"pytest-round-{rec.get('round', n)}.txt"
            output = out_file.read_text(encoding="utf-8", errors="replace") if out_file.exists() else ""
            self.rounds.append(report_from_dict(rec["report"], output))
        return steps.finished

    # ------------------------------------------------------------------------------------ files

    def write_files(self, agent: str, text: str, *, keep: Callable[[CodeFile], CodeFile | None],
                    default_name: str | None) -> list[str]:
        """Extract fenced files from an answer and write those `keep` accepts; refusals are logged."""
        saved = []
        for cf in extract_code_files(text, default_name=default_name):
            accepted = keep(cf)
            if accepted is None:
                self.log.append("file_skipped", agent=agent, path=cf.path, why="not this agent's file")
                continue
            try:
                self.workspace.write_text(accepted.path, accepted.content)
            except WorkspaceError as err:
                self.log.append("file_refused", agent=agent, path=cf.path, why=err.one_line())
                self.progress(f"[yellow]refused {cf.path}: {err.what}[/]")
                continue
            self.written[accepted.path] = agent
            saved.append(accepted.path)
        if saved:
            self.log.append("files_written", agent=agent, paths=saved)
            self.progress(f"  wrote {', '.join(saved)}")
        return saved

    def _code_only(self, cf: CodeFile) -> CodeFile | None:
        return None if Path(cf.path).name.startswith("test_") else cf

    def _tests_only(self, cf: CodeFile) -> CodeFile | None:
        if cf.path == self.module or not cf.path.endswith(".py"):
            return None  # the tester never overwrites the code under test
        name = Path(cf.path).name
        return cf if name.startswith("test_") else CodeFile(path=f"test_{name}", content=cf.content)

    def _docs_only(self, cf: CodeFile) -> CodeFile | None:
        return cf if cf.path.endswith(".md") else None

    # ------------------------------------------------------------------------------------ tests

    def run_tests(self, label: str, task: str) -> TestReport:
        self.progress(f"  running pytest ({label}) …")
        report = run_pytest(self.code_dir, limits=self.limits)  # includes the syntax/import check
        self.rounds.append(report)
        n = len(self.rounds)
        (self.run_dir / f"pytest-round-{n}.txt").write_text(report.output, encoding="utf-8")
        fields = {k: v for k, v in asdict(report).items() if k != "output"}
        self.log.append("tests", round=n, label=label, ok=report.ok, summary=report.summary(),
                        task=task, report=fields)
        colour = "green" if report.ok else "red"
        self.progress(f"  [{colour}]round {n}: {report.summary()}[/]")
        return report

    # ------------------------------------------------------------------------------------ guardrails

    def _once_more(self, key: str) -> bool:
        n = self.attempts.get(key, 0)
        self.attempts[key] = n + 1
        return n == 0

    def implement_guard(self, output: Any) -> tuple[bool, Any]:
        saved = self.write_files("developer", output.raw, keep=self._code_only, default_name=self.module)
        if self.module not in saved and self._once_more("implement"):
            return False, (f"No file named {self.module} was found in your answer. Answer with one fenced code "
                           f"block whose first line is `# file: {self.module}`.")
        return True, output.raw

    def tests_guard(self, output: Any) -> tuple[bool, Any]:
        saved = self.write_files("tester", output.raw, keep=self._tests_only, default_name=self.test_file)
        if not saved and self._once_more("write_tests"):
            return False, (f"No test file was found in your answer. Answer with one fenced code block whose "
                           f"first line is `# file: {self.test_file}`.")
        report = self.run_tests("tests written", "write_tests")
        return True, f"{output.raw}\n\nREAL PYTEST RESULT (round {len(self.rounds)}):\n{report.feedback()}"

    def fix_guard(self, output: Any) -> tuple[bool, Any]:
        self.write_files("developer", output.raw, keep=self._code_only, default_name=self.module)
        fix_round = len(self.rounds)  # rounds so far include the first test run
        report = self.run_tests(f"fix round {fix_round}", "fix_code")
        if report.ok or fix_round >= self.max_fix_rounds:
            return True, f"{output.raw}\n\nREAL PYTEST RESULT (round {len(self.rounds)}):\n{report.feedback()}"
        self.progress(f"  [yellow]tests still fail — developer revises (round {fix_round + 1} of "
                      f"{self.max_fix_rounds})[/]")
        return False, f"The tests still fail. Real pytest output:\n{report.feedback()}"

    def docs_guard(self, output: Any) -> tuple[bool, Any]:
        saved = self.write_files("documentation", output.raw, keep=self._docs_only, default_name=None)
        if not saved:
            # A README is prose: an answer without a fenced block is still the document.
            self.workspace.write_text("README.md", output.raw.strip() + "\n")
            self.written["README.md"] = "documentation"
            self.log.append("files_written", agent="documentation", paths=["README.md"], note="raw answer")
        return True, output.raw


def report_from_dict(d: dict[str, Any], output: str) -> TestReport:
    from crew.tools.sandbox import TestFailure

    fields = dict(d)
    fields["failures"] = tuple(TestFailure(**f) for f in fields.get("failures", ()))
    fields["import_errors"] = tuple(fields.get("import_errors", ()))
    return TestReport(**fields, output=output)
