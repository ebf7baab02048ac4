"""The test rounds of one run, and the only writer of the delivered module.

- **Rounds**: every pytest run on code/ (`run_tests`), its label, its score, and the `Best` round so far
  (`remember_if_best`, `deliver_best`: never deliver worse than the best round).
- **Delivering**: a source reaches code/<module> only through `deliver`, atomically (a temporary file,
  then a rename: a kill leaves the old module or the new one, whole).
- **Probing**: a candidate the run only wants to know about (a second opinion, a consensus attempt) is
  tested in a probe folder of its own beside code/ (`probe`); it reaches code/ only if it is adopted, and
  then through `deliver` and a round of its own.
- **Checkpoints**: at the end of each task the module is saved under checkpoints/ and its sha256 goes into
  the task's `task_done` record; `restore_checkpoint` puts the last finished task's module back. A run
  killed in the middle of a task (kill -9: no `finally` runs) resumes on the code the last finished task
  left — code that was tested, or, when the task gave no example and no round ran, the developer's
  accepted answer — never on a candidate that was being tried.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crew.answers import feedback
from crew.errors import WorkspaceError
from crew.journal.events import BestRestored, TestsRound
from crew.journal.log import RunLog
from crew.journal.records import ModuleRestored, NewBest
from crew.sandbox import SandboxLimits, TestReport, run_pytest
from crew.sandbox.workspace import Workspace

Progress = Callable[[str], None]

CHECKPOINTS = "checkpoints"
PROBES = "probes"


@dataclass(frozen=True)
class Best:
    """The best round so far: its score (higher is better), its number (1-based) and the module it tested."""

    score: tuple[int, ...]
    round: int
    source: str


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


@dataclass
class Ledger:
    run_dir: Path
    module: str
    workspace: Workspace
    log: RunLog
    limits: SandboxLimits
    progress: Progress
    examples_count: int = 0        # the user's examples, first in every report (feedback.split)
    rounds: list[TestReport] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    best: Best | None = None
    _probes: int = field(default=0, repr=False)

    @property
    def code_dir(self) -> Path:
        return self.run_dir / "code"

    @property
    def last(self) -> TestReport | None:
        return self.rounds[-1] if self.rounds else None

    def source(self) -> str:
        """The delivered module as it is now; empty when none was written."""
        try:
            return self.workspace.read_text(self.module)
        except (WorkspaceError, OSError):
            return ""

    # ------------------------------------------------------------------------------------ delivering

    def deliver(self, source: str) -> None:
        """The one write of code/<module>: whole, atomic. Raises WorkspaceError (too big, NUL bytes, …)."""
        self.workspace.replace_text(self.module, source)

    # ------------------------------------------------------------------------------------ rounds

    def run_tests(self, label: str, task: str) -> TestReport:
        self.progress(f"  running pytest ({label}) …")
        report = run_pytest(self.code_dir, limits=self.limits)  # includes the syntax/import check
        self.rounds.append(report)
        self.labels.append(label)
        n = len(self.rounds)
        (self.run_dir / f"pytest-round-{n}.txt").write_text(report.output, encoding="utf-8")
        fields = {k: v for k, v in asdict(report).items() if k != "output"}
        sp = feedback.split(report, self.examples_count)
        self.log.record(TestsRound(round=n, label=label, ok=report.ok, summary=report.summary(), task=task,
                                   report=fields, examples_passed=sp.examples_passed,
                                   examples_total=sp.examples_total, model_passed=sp.model_passed,
                                   model_total=sp.model_total))
        colour = "green" if report.ok else "red"
        origin = (f" — user examples {sp.examples_passed}/{sp.examples_total}, model-written "
                  f"{sp.model_passed}/{sp.model_total}") if self.examples_count else ""
        self.progress(f"  [{colour}]round {n}: {report.summary()}{origin}[/]")
        return report

    def score(self, report: TestReport) -> tuple[int, ...]:
        """Better code first passes more of the user's examples, then more tests in all."""
        sp = feedback.split(report, self.examples_count)
        return (int(report.ok), sp.examples_passed, sp.examples_passed + sp.model_passed, -len(report.import_errors))

    def remember_if_best(self, report: TestReport) -> bool:
        """Keep the module of the best round so far; True when this round is the new best."""
        new = self.score(report)
        if self.best is not None and new <= self.best.score:
            return False
        self.best = Best(score=new, round=len(self.rounds), source=self.source())
        self.log.record(NewBest(round=len(self.rounds), score=new))
        return True

    def deliver_best(self, task: str) -> TestReport | None:
        """Never deliver worse than the best round: put its module back and let pytest confirm it."""
        best = self.best
        if best is None or not self.last or best.round == len(self.rounds):
            return self.last
        if self.source() == best.source or not best.source:
            return self.last
        self.deliver(best.source)
        self.log.record(BestRestored(round=best.round, path=self.module))
        self.progress(f"  [yellow]keeping the code of round {best.round}, the best so far[/]")
        return self.run_tests(f"final: the code of round {best.round} restored", task)

    # ------------------------------------------------------------------------------------ probing

    def probe(self, source: str, *, extra: dict[str, str] | None = None,
              skip: frozenset[str] = frozenset()) -> TestReport:
        """Test `source` as the module, with code/'s other Python files (the tests, helper modules) and
        `extra` files, in a folder of its own beside code/; the folder is gone afterwards (and a kill that
        leaves it behind leaves code/ untouched)."""
        self._probes += 1
        where = self.run_dir / PROBES / str(self._probes)
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        try:
            for path in self.code_dir.glob("*.py"):
                if path.name != self.module and path.name not in skip and path.is_file() and not path.is_symlink():
                    shutil.copyfile(path, where / path.name)
            (where / self.module).write_text(source, encoding="utf-8")
            for name, text in (extra or {}).items():
                (where / name).write_text(text, encoding="utf-8")
            return run_pytest(where, limits=self.limits)
        finally:
            shutil.rmtree(where, ignore_errors=True)

    # ------------------------------------------------------------------------------------ checkpoints

    def checkpoint(self, task: str) -> str:
        """Save the module as the task leaves it; its sha256 ("" when there is none) for `task_done`."""
        source = self.source()
        if not source:
            return ""
        folder = self.run_dir / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{task}.py.tmp"
        tmp.write_text(source, encoding="utf-8")
        tmp.replace(folder / f"{task}.py")
        return sha256_text(source)

    def restore_checkpoint(self, task: str, sha256: str) -> bool:
        """Put the module the finished `task` left back into code/; False when its checkpoint is missing or
        is not the one its record names (then code/ stays as it is)."""
        try:
            source = (self.run_dir / CHECKPOINTS / f"{task}.py").read_text(encoding="utf-8")
        except OSError:
            return False
        if sha256_text(source) != sha256:
            return False
        if self.source() != source:
            self.deliver(source)
            self.log.record(ModuleRestored(task=task, sha256=sha256))
        return True
