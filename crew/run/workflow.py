"""One run of the crew: plan → serve → crew with the test–fix loop → report.

`execute` is the crew part alone (tests drive it with a scripted LLM); `run` wraps it with the plan and the
model servers, whose lifetime is exactly the run's (stopped on return, error, Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crew.answers import answers
from crew.config import ProjectConfig
from crew.errors import InfeasiblePlanError, LocalcrewError, RunAborted, WorkflowError
from crew.journal.events import Start as PartStarted
from crew.journal.records import GpuAlert, PlanChosen, PlannedAgent, ReportWritten, RunStopped, Usage
from crew.run import assumed, attempts  # attempts: settle_ahead
from crew.run.drafter import drafter
from crew.run.report import AgentUsage, earlier_faults, files_on_disk, llm_call, render_report, whole_run_usage
from crew.run.state import ParsedTask, RunState
from crew.run.steps import Knobs
from crew.run.verdict import Verdict
from crew.run.verdict import judge as judge_verdict
from crew.sandbox import SandboxLimits
from crew.units import LOCAL

Say = Callable[[str], None]


@dataclass
class RunResult:
    run_dir: Path
    ok: bool
    rounds: int
    report_path: Path
    notes: list[str] = field(default_factory=list)
    verdict: str = ""      # crew/run/verdict.py KINDS
    strict_exit: int = 0   # what `--strict` exits with: 0 where the strongest evidence says the code works


# ------------------------------------------------------------------------------------------ inputs


def derive_module(task: str) -> str:
    """The module file the code goes into: a `name.py` the task mentions, else its first function name."""
    if m := re.search(r"\b([A-Za-z_][A-Za-z0-9_]*)\.py\b", task):
        return f"{m.group(1)}.py"
    if m := re.search(r"`([A-Za-z_][A-Za-z0-9_]*)\(", task):
        return f"{m.group(1)}.py"
    return "solution.py"


def slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:n].rstrip("-") or "task"


def new_run_dir(root: Path, task: str) -> Path:
    """runs/<timestamp>-<slug>/, never an existing folder (a suffix is added on a clash)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{slug(task)}"
    candidate, i = base, 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            i += 1
            candidate = base.with_name(f"{base.name}-{i}")


def run_inputs(project: ProjectConfig, *, task: str | None, module: str | None) -> dict[str, str]:
    inputs = dict(project.tasks.inputs)
    if task:
        inputs["project_task"] = task.strip()
        if not module:
            inputs["module"] = derive_module(task)
    if module:
        inputs["module"] = module
    if not inputs.get("project_task"):
        raise WorkflowError("no project task given", where="tasks.yaml: inputs.project_task",
                            fix="set inputs.project_task, LOCALCREW_TASK, or pass --task")
    inputs.setdefault("module", derive_module(inputs["project_task"]))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.py", inputs["module"]):
        raise WorkflowError(f"{inputs['module']!r} is not a Python module file name", where="module",
                            fix="use a name like calc.py")
    from crew.sandbox.names import refusal

    if refused := refusal(inputs["module"]):  # the developer could never write it: say so before any server
        raise WorkflowError(refused[0], where="module (--module, or the name the task gives)",
                            fix=refused[1].replace("name the file", "name the module") + " (--module)")
    inputs["module_name"] = inputs["module"][:-3]
    return with_derived_inputs(inputs)


def with_derived_inputs(inputs: dict[str, str]) -> dict[str, str]:
    """Inputs computed from the task (also for a run logged before they existed, when it is resumed)."""
    from crew.answers.prose import task_as_prose, task_for_developer

    task = inputs.get("project_task", "")
    # For the manager and the tester: the task without code blocks they would copy (crew/answers/prose.py).
    inputs.setdefault("task_as_prose", task_as_prose(task))
    parsed = ParsedTask.parse(task)  # what the tester imports: functions and classes, never a class's methods
    inputs.setdefault("functions", ", ".join(dict.fromkeys(parsed.functions + parsed.classes)) or "...")
    inputs.setdefault("code_advice", answers.CLASS_ADVICE if answers.has_class_skeleton(task) else "")
    # For the developer: a class skeleton's docstrings as words and the skeleton bare (crew/answers/prose.py).
    inputs.setdefault("task_for_developer", task_for_developer(task))
    return inputs


# ------------------------------------------------------------------------------------------ the crew


Start = Callable[[Any], Any]  # given the built Crew, kick it off (or replay/resume it)


def kickoff(inputs: dict[str, str]) -> Start:
    return lambda crew: crew.kickoff(inputs=inputs)


def execute(project: ProjectConfig, llms: Mapping[str, Any], state: RunState, inputs: dict[str, str], *,
            verbose: bool = False, start: Start | None = None, label: str = "kickoff") -> Any:
    """Build the crew and start it. Test verdicts land in state.rounds; every step in state.log."""
    from crew.run.crew import LocalCrew
    from crew.run.progress import task_progress

    local = LocalCrew(project, llms, state, verbose=verbose)
    crew = local.crew()
    if "developer" in llms:
        _room_for_a_class(llms["developer"], inputs["project_task"], state)
    if "developer" in llms and state.draft is None:
        state.draft = drafter(llms["developer"], inputs.get("task_for_developer") or inputs["project_task"])
        if state.knobs.class_by_method:
            from crew.run.by_method import composer

            state.draft.by_method = composer(  # type: ignore[attr-defined]
                llms["developer"], inputs.get("task_for_developer") or inputs["project_task"],
                inputs["project_task"], state.module, at_once=state.knobs.samples_at_once, progress=state.progress)
    if "manager" in llms:
        assumed.ask_ahead(state, llms["manager"])  # beside specify and implement, where the server has slots
    state.log.record(PartStarted(label, inputs))
    try:
        with task_progress(state, llms, verbose=verbose):
            (start or kickoff(inputs))(crew)
    except KeyboardInterrupt:
        # The servers stop next; the request one of them was streaming then fails in a CrewAI thread, which
        # logs it as an error. The user pressed Ctrl-C: one line from us says what happened, nothing else.
        logging.disable(logging.CRITICAL)
        raise
    except RunAborted as stop:  # a server crashed with no fallback left: the report is written from `crew`
        stop.crew = crew  # type: ignore[attr-defined]
        raise
    finally:
        for thread in local.ahead:  # a head start CrewAI never took (write_tests skipped): let it finish
            thread.join(timeout=5.0)
        attempts.settle_ahead(state)
    return crew


# A class skeleton's whole module (ClassEval: 5–10 methods) ran past 1024 tokens, and an answer cut off before
# its closing fence holds no module (ClassEval/4 at eea35a5: 118 s, no module, twice). The limit only caps an
# answer: one that ends sooner costs nothing more.
CLASS_MAX_TOKENS = 2048


def _room_for_a_class(llm: Any, task: str, state: RunState) -> None:
    """The developer's answer limit raised for a task with a class skeleton, within half its context."""
    current = getattr(llm, "max_tokens", None)
    if not isinstance(current, int) or not answers.has_class_skeleton(task):
        return
    window = getattr(llm, "server_ctx_tokens", 0) or 0
    wanted = min(CLASS_MAX_TOKENS, window // 2) if window else CLASS_MAX_TOKENS
    if wanted > current:
        llm.max_tokens = wanted
        state.progress(f"  a class skeleton: the developer's answers may run to {wanted} tokens (was {current})")


def write_report(project: ProjectConfig, crew: Any, state: RunState, inputs: dict[str, str],
                 usage: list[AgentUsage], notes: list[str], extra: str = "", verdict: Verdict | None = None) -> Path:
    outputs = {t.name: (t.output.raw if t.output is not None else "") for t in crew.tasks} if crew else {}
    v = verdict or judge_verdict(state)
    events = state.log.read()
    text = render_report(
        project_task=inputs["project_task"], spec=outputs.get("specify", ""), summary=outputs.get("report", ""),
        files=files_on_disk(state.code_dir), rounds=state.rounds, usage=usage,
        max_fix_rounds=state.max_fix_rounds, notes=notes + state.notes(events), round_notes=state.round_notes(events),
        tests_origin=state.tests_origin(events), seed=project.tasks.workflow.seed, verdict=v,
    ) + (f"\n{extra}" if extra else "")
    path = state.run_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    state.log.record(ReportWritten(path=str(path), ok=bool(state.last and state.last.ok), rounds=len(state.rounds),
                                   verdict=v.kind))
    return path


def usage_of(llms: Mapping[str, Any], where: Mapping[str, Any]) -> list[AgentUsage]:
    """Per agent: model, device, server, tokens, calls, wall time (from each agent's own LLM object)."""
    rows = []
    for name, llm in llms.items():
        summary = llm.get_token_usage_summary()
        model, device, server = where.get(name, (str(getattr(llm, "model", "?")), "?", "?"))
        device = str(getattr(llm, "device", device))  # a failover changes it mid-run
        rows.append(AgentUsage(name=name, model=model, device=device, server=server,
                               prompt_tokens=summary.prompt_tokens, completion_tokens=summary.completion_tokens,
                               calls=int(getattr(llm, "calls", summary.successful_requests)),
                               wall_s=float(getattr(llm, "wall_s", 0.0))))
    return rows


# ------------------------------------------------------------------------------------------ the run


def run(project: ProjectConfig, *, task: str | None = None, module: str | None = None,
        verbose: bool = False, say: Say = print, plan_file: Path | None = None) -> RunResult:
    """A fresh run: new run folder, servers up, the crew from its first task, report."""
    inputs = run_inputs(project, task=task, module=module)
    wf = project.tasks.workflow
    plan = feasible_plan(project, plan_file)
    run_dir = new_run_dir(project.root / wf.workspace_root, inputs["project_task"])
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, say)
    say(f"[bold]localcrew[/] run folder: {run_dir}")
    return serve_and_execute(project, state, inputs, plan=plan, say=say, verbose=verbose,
                             start=kickoff(inputs), label="kickoff")


def feasible_plan(project: ProjectConfig, plan_file: Path | None = None) -> Any:
    from crew.planner.build import plan_for_run

    plan = plan_for_run(project, plan_file)
    if not plan.feasible:
        from crew.planner.render import explain_unplaced

        raise InfeasiblePlanError("the plan cannot place every agent", where=project.layout.path,
                                  fix=explain_unplaced(plan))
    return plan


def open_state(project: ProjectConfig, run_dir: Path, inputs: dict[str, str], say: Say) -> RunState:
    wf = project.tasks.workflow
    knobs = Knobs(implement_rounds=wf.implement_rounds, max_fix_rounds=wf.max_fix_rounds,
                  second_opinions=wf.second_opinions, consensus_samples=wf.consensus_samples,
                  consensus_tiebreak=wf.consensus_tiebreak,
                  samples_at_once=wf.samples_at_once, assumed_examples=wf.assumed_examples,
                  class_by_method=wf.class_by_method, samples_ahead=wf.samples_ahead,
                  lean_samples=wf.lean_samples)
    state = RunState(run_dir=run_dir, module=inputs["module"], knobs=knobs,
                     sandbox_limits=SandboxLimits(wall_timeout_s=wf.test_timeout_s), progress=say,
                     task=inputs["project_task"])
    state.write_examples()
    return state


def serve_and_execute(project: ProjectConfig, state: RunState, inputs: dict[str, str], *, plan: Any, say: Say,
                      verbose: bool, start: Start, label: str) -> RunResult:
    """Servers up for exactly the crew's work (down on return, error, Ctrl-C, SIGTERM), then the report."""
    from crew.serving.bind import bind_agents
    from crew.serving.session import ServerSession

    state.log.record(PlanChosen(source=plan.source, simulated=plan.simulated,
                                agents={a.name: PlannedAgent(a.model, a.placement, a.gpu_indices, a.num_ctx)
                                        for a in plan.agents}))
    _import_crewai_meanwhile()
    keep = project.layout.keep_warm
    session = ServerSession(project, plan, state_dir=state.run_dir / "servers", keep=keep, say=say, log=state.log,
                            make_launcher=_fleet_launcher)
    with session.running():
        if keep:
            say("  keep_warm: servers stay up after the run (stop them with `plan-gpus down`)")
        bound = bind_agents(plan, session.specs, project)
        crew, usage, notes, gpu_section, aborted = _crew_with_failover(
            project, state, inputs, plan, session, bound, say=say, verbose=verbose, start=start, label=label)
    if aborted is not None:  # what was done so far, in the report; then the one line, exit 2
        stopped = (f"\n## Run stopped\n\n{aborted.one_line()}\n\nEvery finished step is in run.jsonl: after the "
                   f"fix, `localcrew resume {state.run_dir}` continues from there.\n")
        state.log.record(RunStopped(error=aborted.one_line()))
        report = write_report(project, crew, state, inputs, usage, session.notes + notes,
                              extra=stopped + gpu_section)
        say(f"[bold red]STOPPED[/] — report: {report}")
        raise aborted
    v = judge_verdict(state)
    report = write_report(project, crew, state, inputs, usage, session.notes + notes, extra=gpu_section, verdict=v)
    say(f"  verdict: {v.headline()}")
    say(f"[bold]{'PASS' if v.ok else 'FAIL'}[/] after {len(state.rounds)} test round(s) — report: {report}")
    return RunResult(run_dir=state.run_dir, ok=v.ok, rounds=len(state.rounds), report_path=report,
                     notes=session.notes + notes, verdict=v.kind, strict_exit=v.strict_exit())


def _import_crewai_meanwhile() -> None:
    """Import CrewAI in a thread while the model servers load: it takes 5–9 s on 2 cores (`python -X importtime`
    -c "import crewai"`), which ran after the servers were up, before the first request. Whoever needs it
    first waits for this import to end (Python's per-module import lock); should the thread fail, that import
    simply runs again where it is needed."""
    def body() -> None:
        with contextlib.suppress(BaseException):
            import crewai  # noqa: F401

            import crew.run.crew  # noqa: F401

    threading.Thread(target=body, name="import-crewai", daemon=True).start()


def _fleet_launcher() -> Any:
    """Actors on the layout's Ray cluster start the plan's servers on other nodes (crew/fleet/remote.py)."""
    from crew.fleet.remote import Launcher

    return Launcher()


def _crew_with_failover(project: ProjectConfig, state: RunState, inputs: dict[str, str], plan: Any,
                        session: Any, bound: Any, *, say: Say, verbose: bool, start: Start,
                        label: str) -> tuple[Any, list[AgentUsage], list[str], str, LocalcrewError | None]:
    """The crew on bound agents, with the failover router and the GPU sampler around every model call.
    Returns the crew, usage over the whole run, notes, the report's GPU section, and the error that
    stopped the run early (a server crashed and no fallback was left), if one did."""
    from crew.monitor.alerts import thresholds_from
    from crew.monitor.sampler import GpuSampler, render_sampler_markdown
    from crew.serving.bind import api_fallback, cpu_fallback_model
    from crew.serving.failover import Router
    from crew.serving.relocate import GpuRelocator

    router = Router(supervisor=session.supervisor, log=state.log, say=say, binding=bound.binding,
                    cpu_fallback=lambda agent: cpu_fallback_model(project, agent),
                    api_fallback=lambda agent: api_fallback(project, agent),
                    gpu_fallback=GpuRelocator(plan, free_bytes=session.free_bytes), on_started=session.ready)
    recording = state.run_dir / "gpus.csv"
    with GpuSampler(provider=session.nvml(), interval_s=1.0, thresholds=thresholds_from(project.layout.alerts),
                    record_to=recording) as sampler:
        for llm in bound.llms.values():
            if hasattr(llm, "on_unreachable"):
                llm.on_unreachable(router)
                llm.around_each_call(sampler.generating)
                llm.on_answer(lambda agent, url, model, took: state.log.record(
                    llm_call(agent, url, model, took, bound.llms[agent])))
        aborted: LocalcrewError | None = None
        try:
            crew = execute(project, bound.llms, state, inputs, verbose=verbose, start=start, label=label)
        except RunAborted as stop:
            crew, aborted = getattr(stop, "crew", None), stop.error
    usage = usage_of(bound.llms, bound.where)
    state.log.record(Usage(agents=tuple(usage)))  # this part's own counters
    events = state.log.read()  # read once for the report's parts
    usage = whole_run_usage(events, usage)  # a resume: every part
    planned = {g.index: g.planned_bytes for g in plan.gpus if g.host == LOCAL}
    gpu_section = render_sampler_markdown(sampler.summary(), planned, sampler.alerts(), note=sampler.note)
    if recording.exists():
        gpu_section += (f"\nEvery reading is in `{recording.name}` (nvidia-smi's CSV): "
                        f"`plan-gpus monitor --replay {recording}` shows it again.\n")
    notes = [sampler.recording_note] if sampler.recording_note else []
    for alert in sampler.first_alerts():
        state.log.record(GpuAlert.of(alert))
    notes += earlier_faults(events) + [_plain(e) for e in router.events]
    return crew, usage, notes, gpu_section, aborted


def _plain(text: str) -> str:
    """Rich markup off, for the Markdown report."""
    return re.sub(r"\[/?[a-z ]*\]", "", text)
