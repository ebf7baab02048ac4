"""Run pytest on model-written code, contained. The verdict comes from pytest's own hooks, never a model.

`run_pytest(workspace)` stages a copy, runs it in the sandbox and returns a `TestReport`. The parts:

- `report.py`   `SandboxLimits`, `TestReport`, `TestFailure`: pure data;
- `launch.py`   the parent's side, one run: stage, start, watch, read back (`launch`), and the most
                contained mode this machine allows (`sandbox_mode`), built from
  - `modes.py`    the launch modes, most contained first;
  - `stage.py`    the staged copy of the workspace, the inside's files, the command that starts them;
  - `cgroup.py`   a cgroup v2 per run: memory and process caps, `cgroup.kill` at the end;
  - `process.py`  the supervisor's process: scrubbed environment, capped output, wall-clock kill;
- `inside/`     the inside (standard library only, copied into the stage and run as `python -I`): the
                supervisor, PID 1 of the sandbox, and the worker that runs pytest;
- `verdict.py`  the supervisor's event stream parsed, and the verdict computed from it in the parent.

What an agent-written file can and cannot do: docs/sandbox.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from crew.sandbox.launch import launch, sandbox_mode
from crew.sandbox.modes import SandboxMode, candidate_modes
from crew.sandbox.report import SandboxLimits, TestFailure, TestReport
from crew.sandbox.stage import STAGE_NAME
from crew.sandbox.verdict import verdict

__all__ = ["STAGE_NAME", "SandboxLimits", "SandboxMode", "TestFailure", "TestReport", "candidate_modes",
           "check_modules", "run_pytest", "sandbox_mode"]

_DEFAULT_LIMITS = SandboxLimits()
_CHECK_LIMITS = SandboxLimits(wall_timeout_s=20)
# --continue-on-collection-errors: a model-written test file that does not parse must not stop the
# user's examples from running (it used to interrupt the whole session, and the examples counted as passed).
_PYTEST_ARGS = ["-q", "--tb=short", "-o", "console_output_style=classic", "--continue-on-collection-errors"]


def run_pytest(workspace: Path, *, limits: SandboxLimits = _DEFAULT_LIMITS, python: str = sys.executable,
               mode: SandboxMode | None = None) -> TestReport:
    """Stage the workspace, check that its modules parse and import, and run pytest there, contained.

    `mode` defaults to the most contained one this machine allows (`sandbox_mode`); tests pass others.
    """
    started = time.monotonic()
    run = launch(workspace, "pytest", _PYTEST_ARGS, limits, python, mode or sandbox_mode(python))
    v = verdict(run.events, timed_out=run.timed_out)
    return TestReport(
        collected=v.collected, passed=v.passed, failed=v.failed, errors=v.errors, skipped=v.skipped,
        failures=v.failures, timed_out=run.timed_out, exit_code=v.exit_code, output=run.output,
        duration_s=time.monotonic() - started, network_isolated=run.mode.network_isolated,
        import_errors=v.import_errors, isolation=_isolation(run.mode, run.cgroup_note),
        running_at_kill=v.running, time_limit_s=limits.wall_timeout_s, tampered=run.refused + v.tampered,
        passed_ids=v.passed_ids)


def check_modules(workspace: Path, python: str = sys.executable, *,
                  limits: SandboxLimits = _CHECK_LIMITS) -> tuple[str, ...]:
    """Syntax and import errors of each produced non-test module, as "file:line: Error: message".

    Both are found in the sandbox: parsing a hostile file can exhaust memory or the stack, and importing
    runs the model's code (run_pytest does the same checks before the tests start).
    """
    run = launch(workspace, "imports", [], limits, python, sandbox_mode(python))
    return run.refused + verdict(run.events, timed_out=run.timed_out).import_errors


def _isolation(mode: SandboxMode, cgroup_note: str) -> str:
    return mode.describe() + (f"; {cgroup_note}" if cgroup_note else "")
