"""Picking a run up again: `crewai replay -t TASK_ID` and `localcrew resume RUN_DIR`.

crewai's replay re-runs the last kickoff from a task, using crewai's own store of task outputs (which keeps
only the newest kickoff of a project folder). `localcrew resume` needs no such store: the run's own log has
every finished task's output, so any interrupted run — even one killed with kill -9 — continues after its
last finished task, in the same run folder, with its files and test rounds intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crew.config import TASK_NAMES, ProjectConfig
from crew.errors import UsageError
from crew.journal.events import Start, TaskDone
from crew.journal.log import RunLog, settled
from crew.run.workflow import RunResult, Say, feasible_plan, open_state, serve_and_execute, with_derived_inputs


def _inputs_of(log: RunLog, where: str) -> dict[str, str]:
    kickoff = next((e for e in log.read() if isinstance(e, Start) and e.event == "kickoff"), None)
    if kickoff is None:
        raise UsageError("this run never started its crew", where=where, fix="start a new run with `crewai run`")
    return with_derived_inputs(dict(kickoff.inputs))


def resume_run(project: ProjectConfig, run_dir: Path, *, say: Say = print, verbose: bool = False) -> RunResult:
    log = RunLog(run_dir / "run.jsonl")
    if not log.path.exists():
        raise UsageError(f"no run log in {run_dir}", where=str(run_dir),
                         fix="give a folder under runs/ made by `crewai run`")
    inputs = _inputs_of(log, str(run_dir))
    state = open_state(project, run_dir.resolve(), inputs, say)
    finished = state.restore()
    start_index = len(finished)
    if start_index >= len(TASK_NAMES):
        say(f"run {run_dir} already finished every task; writing its report again")
    else:
        rerun = settled(log.records(), TASK_NAMES).rerun_rounds
        again = f", {rerun} round(s) of the unfinished task to run again" if rerun else ""
        say(f"resuming {run_dir} at task {TASK_NAMES[start_index]!r} ({start_index} finished, "
            f"{len(state.rounds)} test round(s) kept{again})")

    def start(crew: Any) -> Any:
        return _continue(crew, finished, inputs)

    return serve_and_execute(project, state, inputs, plan=feasible_plan(project), say=say, verbose=verbose,
                             start=start, label="resume")


def _continue(crew: Any, finished: list[TaskDone], inputs: dict[str, str]) -> Any:
    """What crewai's Crew.replay does, but starting after the finished tasks instead of at one of them."""
    from crewai.tasks.task_output import TaskOutput

    crew._inputs = inputs
    crew._interpolate_inputs(inputs)
    for i, rec in enumerate(finished):
        crew.tasks[i].output = TaskOutput(description=rec.description, agent=rec.agent, raw=rec.raw)
    if len(finished) >= len(crew.tasks):
        return None
    return crew._execute_tasks(crew.tasks, len(finished), True)


def replay_task(project: ProjectConfig, task_id: str, *, say: Say = print, verbose: bool = False) -> RunResult:
    """`crewai replay -t TASK_ID`: the run folder comes from the inputs crewai stored with that task."""
    from crewai.utilities.task_output_storage_handler import TaskOutputStorageHandler

    stored = TaskOutputStorageHandler().load() or []
    match = next((s for s in stored if str(s.get("task_id")) == task_id), None)
    if match is None:
        raise UsageError(f"task {task_id} is not in the last run's stored outputs", where="crewai replay -t",
                         fix="list the ids with `crewai log-tasks-outputs`, or use `localcrew resume RUN_DIR`")
    inputs = with_derived_inputs({k: str(v) for k, v in (match.get("inputs") or {}).items()})
    run_dir = Path(inputs["workspace"]).parent
    state = open_state(project, run_dir, inputs, say)
    task_name = TASK_NAMES[int(match.get("task_index", 0))]
    state.restore(before_task=task_name)
    say(f"replaying {run_dir} from task {task_name!r}")
    return serve_and_execute(project, state, inputs, plan=feasible_plan(project), say=say, verbose=verbose,
                             start=lambda crew: crew.replay(task_id=task_id, inputs=inputs), label="replay")
