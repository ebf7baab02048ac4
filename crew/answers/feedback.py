"""What a small model is told after a test run: the failing assertion, expected and actual, the last frame.

Small models lose the thread in long prompts, and a whole pytest log is mostly pytest's own frames. So each
failure is cut to pytest's `E` lines (the assertion with both values, or the exception) and the last frame in
the code under test, at most three failures, each marked as the user's example or a model-written test.
Pure: a TestReport in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crew.answers.examples import EXAMPLES_FILE
from crew.sandbox import TestFailure, TestReport

_FRAME = re.compile(r"^(?P<file>[^\s:][^:]*\.py):(?P<line>\d+):")
_MAX_E_LINES = 6
_MAX_LINE = 220


@dataclass(frozen=True)
class Split:
    """A round's results by origin: the user's examples (ground truth) and the model-written tests."""

    examples_total: int
    examples_failed: int
    model_total: int
    model_failed: int

    @property
    def examples_passed(self) -> int:
        return self.examples_total - self.examples_failed

    @property
    def model_passed(self) -> int:
        return self.model_total - self.model_failed


def is_example(f: TestFailure) -> bool:
    return _in_examples(f.name)


def split(report: TestReport, n_examples: int) -> Split:
    """Counts per origin, from which tests passed. When the module cannot be imported nothing passes,
    whatever pytest collected; an example that did not run (a collection error elsewhere stopped the
    session) has not passed."""
    broken = bool(report.import_errors) or report.timed_out or report.died or bool(report.tampered)
    if report.passed and not report.passed_ids:
        return _split_by_counts(report, n_examples, broken)  # a record written before ids were kept
    ex_passed = sum(1 for n in report.passed_ids if _in_examples(n))
    model_passed = len(report.passed_ids) - ex_passed
    ex_failed = sum(1 for f in report.failures if is_example(f))
    model_total = max(model_passed + len(report.failures) - ex_failed,
                      report.collected - min(n_examples, ex_passed + ex_failed), 0)
    if broken:
        return Split(n_examples, n_examples, model_total, model_total)
    ex_passed = min(ex_passed, n_examples)
    return Split(n_examples, n_examples - ex_passed, model_total, model_total - min(model_total, model_passed))


def _split_by_counts(report: TestReport, n_examples: int, broken: bool) -> Split:
    ex_failed = sum(1 for f in report.failures if is_example(f))
    model_failed = len(report.failures) - ex_failed
    collected_examples = n_examples if (n_examples and report.collected >= n_examples) else 0
    model_total = max(0, report.collected - collected_examples)
    if broken or (n_examples and not collected_examples):
        return Split(n_examples, n_examples, model_total, model_total)
    return Split(n_examples, min(n_examples, ex_failed), model_total, min(model_total, model_failed))


def _in_examples(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1] == EXAMPLES_FILE


def compact(report: TestReport, *, module: str, limit: int = 3) -> str:
    """The few lines a developer needs to fix the code."""
    out = [f"pytest: {report.summary()}"]
    out += [f"the module does not import: {e}" for e in report.import_errors[:2]]
    if report.timed_out:
        out.append("The run was killed at the time limit: look for an endless loop or a very slow algorithm.")
    elif report.died:
        out.append("pytest died: the code may use too much memory or too many processes.")
    failures = sorted(report.failures, key=lambda f: not is_example(f))  # the user's examples first
    for f in failures[:limit]:
        origin = "example from the task" if is_example(f) else "model-written test"
        out.append(f"FAILED {f.name.split('::')[-1]} ({origin}):")
        out += [f"  {line}" for line in _essential(f, module)]
    if len(failures) > limit:
        out.append(f"… and {len(failures) - limit} more failing tests")
    return "\n".join(out)


def _essential(f: TestFailure, module: str) -> list[str]:
    lines = f.traceback.splitlines()
    e_lines = [ln.strip() for ln in lines if ln.lstrip().startswith("E ")][:_MAX_E_LINES]
    if not e_lines and f.message:
        e_lines = [f.message.splitlines()[0]]
    frames = [ln.strip() for ln in lines if (m := _FRAME.match(ln.strip())) and m.group("file").endswith(module)]
    where = [f"at {frames[-1]}"] if frames else []
    return [ln[:_MAX_LINE] for ln in e_lines + where]
