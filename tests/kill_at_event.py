"""Child of tests/test_kill_every_event.py: a scripted run (real crewai crew, real pytest sandbox, scripted
LLM) that is killed with SIGKILL right after its N-th run-log record — no `finally`, no cleanup, as kill -9.

`python -m tests.kill_at_event PROJECT ROOT SCENARIO.json` is the driver: a fresh process that imports
crewai once and then forks one child per N (each runs the scenario from scratch in ROOT/kill-N), first one
that is never killed, to count the records. It never runs a crew itself: fork() copies only the calling
thread, and a process that has run crews (a pytest session, after other tests) holds threads whose locks a
child would wait on forever (seen: CI hung in futex_wait). The statuses go to ROOT/statuses.json.

Beside the run, an oracle the product never reads: at each `task_done`, the module as that task left it is
copied to oracle/<task>.py (before the record is written, so a kill right after it still finds it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from crew.journal.events import Event, TaskDone
from crew.journal.log import RunLog


def run_scenario(project_dir: Path, run_dir: Path, script: dict[str, list[str]], task: str, module: str,
                 consensus: int) -> None:
    """The scripted run of tests/test_workflow.py's `_run_with`, in `run_dir`."""
    from dataclasses import replace

    from crew.config import load_project
    from crew.run.workflow import execute, open_state, run_inputs, usage_of, write_report
    from tests.fake_llm import ScriptedLLM

    project = load_project(project_dir)
    project = replace(project, tasks=replace(project.tasks, workflow=replace(project.tasks.workflow,
                                                                             consensus_samples=consensus)))
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=script) for name in project.agents}
    inputs = run_inputs(project, task=task, module=module)
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, lambda _: None)
    crew = execute(project, llms, state, inputs)
    write_report(project, crew, state, inputs, usage_of(llms, {}), [])


def killing_record(kill_at: int, module: str) -> Any:
    """RunLog.record that SIGKILLs this process right after its `kill_at`-th record."""
    original = RunLog.record
    count = [0]

    def record(self: RunLog, event: Event) -> None:
        if isinstance(event, TaskDone):
            oracle = self.path.parent / "oracle"
            oracle.mkdir(exist_ok=True)
            src = self.path.parent / "code" / module
            if src.exists():
                shutil.copyfile(src, oracle / f"{event.task}.py")
        original(self, event)
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return record


NEVER = 10**9  # a kill point past the end: the run finishes


def main(argv: list[str]) -> int:
    project_dir, root, scenario = Path(argv[0]), Path(argv[1]), json.loads(Path(argv[2]).read_text())
    import crewai  # noqa: F401 - imported once, before any fork, so each child starts warm

    import crew.run.workflow  # noqa: F401

    args = (scenario["script"], scenario["task"], scenario["module"], scenario["consensus"])
    whole = fork_runs(project_dir, root, [NEVER], *args)
    records = len((root / f"kill-{NEVER}" / "run.jsonl").read_text().splitlines())
    statuses = fork_runs(project_dir, root, list(range(1, records + 1)), *args)
    (root / "statuses.json").write_text(json.dumps({"whole": whole[NEVER], "records": records,
                                                    "statuses": {str(k): v for k, v in statuses.items()}}))
    return 0


def fork_runs(project_dir: Path, root: Path, kill_points: list[int], script: dict[str, list[str]], task: str,
              module: str, consensus: int) -> dict[int, int]:
    """One forked child per kill point, one after the other; returns each child's wait status."""
    statuses = {}
    for k in kill_points:
        pid = os.fork()
        if pid == 0:  # the child: run until the k-th record, then die as kill -9 would
            try:
                RunLog.record = killing_record(k, module)  # type: ignore[method-assign]
                run_scenario(project_dir, root / f"kill-{k}", script, task, module, consensus)
                os._exit(0)
            except BaseException:  # noqa: BLE001 - a child must never return into the parent's pytest
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        statuses[k] = status
    return statuses


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
