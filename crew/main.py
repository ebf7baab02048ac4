"""Entry points the crewai CLI calls through `uv run` (run_crew, replay, test, train) and `localcrew`.

`crewai run` → `uv run run_crew`; `crewai replay -t ID` → `uv run replay ID`; `crewai test N MODEL` →
`uv run test N MODEL`; `crewai train N FILE` → `uv run train N FILE`. crewai's `run` refuses `--inputs` for
classic crews, so the project task comes from LOCALCREW_TASK / LOCALCREW_TASK_FILE, `run_crew --task`, or
tasks.yaml's `inputs.project_task`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from crew.cli.guard import guarded
from crew.errors import UsageError, disk_full_as_error
from crew.offline import go_offline


def _console_say() -> Callable[[str], None]:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)  # long paths stay on one line (greppable logs)

    def say(text: str) -> None:
        console.print(text)

    say.console = console  # type: ignore[attr-defined]  # the progress spinner draws on the same console
    return say


def _guard(prog: str, body: Callable[[], int]) -> int:
    """The shared guard (crew/cli/guard.py), plus: a full disk is one line, and Ctrl-C ends the process."""

    def within_disk_guard() -> int:
        with disk_full_as_error():  # a full disk anywhere in a run is one line, and the run stays resumable
            return body()

    return guarded(prog, within_disk_guard, on_interrupt=lambda: _end_interrupted(prog))


def _end_interrupted(prog: str) -> None:
    print(f"{prog}: interrupted — servers stopped; the run log keeps every finished step "
          "(`localcrew resume RUN_DIR` continues it)", file=sys.stderr)
    # The servers are down (Supervisor's finally) and every log line is fsynced. What is left are CrewAI's
    # worker threads, one of them still inside a model request: waiting for them took minutes and ended
    # in a page of tracebacks, so the process ends here.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _task_from(args: argparse.Namespace) -> str | None:
    if args.task:
        return str(args.task)
    file = args.task_file or os.environ.get("LOCALCREW_TASK_FILE")
    if file:
        path = Path(file)
        if not path.is_file():
            raise UsageError(f"task file not found: {path}", where="--task-file / LOCALCREW_TASK_FILE",
                             fix="give the path of a text file that describes the task")
        return path.read_text(encoding="utf-8")
    return os.environ.get("LOCALCREW_TASK") or None


def _run_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run the crew on a project task (embedded model "
                                "on CPU when no GPU is present).")
    p.add_argument("--task", help="the project task (else LOCALCREW_TASK, LOCALCREW_TASK_FILE, tasks.yaml)")
    p.add_argument("--task-file", help="read the project task from this file")
    p.add_argument("--module", help="module file the code goes into (default: derived from the task)")
    p.add_argument("--project", default=".", help="project folder with the three YAML files (default: .)")
    p.add_argument("--plan", help="apply a plan saved by `plan-gpus --save` (else LOCALCREW_PLAN)")
    p.add_argument("--verbose", action="store_true", help="show CrewAI's own verbose output")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 unless the strongest evidence says the code works: every test passes, or only "
                        "model-written tests fail that your examples and every independent attempt dispute")
    return p


def _do_run(args: argparse.Namespace, prog: str) -> int:
    from crew.config import load_project

    project = load_project(Path(args.project).resolve())  # config mistakes surface before heavy imports
    from crew.run.workflow import run

    verbose = args.verbose or os.environ.get("LOCALCREW_VERBOSE") == "1"
    result = run(project, task=_task_from(args), module=args.module, verbose=verbose, say=_console_say(),
                 plan_file=Path(args.plan) if args.plan else None)
    return result.strict_exit if args.strict else 0


def run_crew(argv: Sequence[str] | None = None) -> int:
    go_offline()
    args = _run_parser("run_crew").parse_args(sys.argv[1:] if argv is None else argv)
    return _guard("localcrew", lambda: _do_run(args, "run_crew"))


def _replay_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="replay", description="Re-run the last kickoff from one task on.")
    p.add_argument("task_id", help="the task's id, as `crewai log-tasks-outputs` lists it")
    p.add_argument("--project", default=".", help="project folder with the three YAML files (default: .)")
    return p


def replay(argv: Sequence[str] | None = None) -> int:
    """`crewai replay -t TASK_ID`: re-run the last kickoff from that task, on the same run folder."""
    go_offline()
    args = _replay_parser().parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        from crew.config import load_project
        from crew.run.resume import replay_task

        replay_task(load_project(Path(args.project).resolve()), args.task_id, say=_console_say())
        return 0

    return _guard("replay", body)


def test(argv: Sequence[str] | None = None) -> int:
    """`crewai test N MODEL`: run the crew N times on the embedded default and print each verdict."""
    go_offline()
    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args and args[0].isdigit() else 1

    def body() -> int:
        from crew.config import load_project
        from crew.run.workflow import run

        project = load_project(Path(".").resolve())
        say = _console_say()
        passed = 0
        for i in range(n):
            say(f"[bold]iteration {i + 1} of {n}[/]")
            passed += run(project, say=say).ok
        say(f"{passed} passed, {n - passed} failed")
        return 0

    return _guard("test", body)


def train(argv: Sequence[str] | None = None) -> int:
    """`crewai train`: not offered — training needs human feedback per step, which local runs skip."""
    print("train: localcrew does not support crewai train (it asks a human for feedback on every step) — "
          "fix: use `crewai run` and edit agents.yaml/tasks.yaml instead", file=sys.stderr)
    return 2


LOCALCREW_COMMANDS = (
    "commands:\n"
    "  run [options]           run the crew on a project task (the default: `localcrew --task ...` runs too)\n"
    "  resume RUN_DIR          continue an interrupted run from its last completed step\n"
    "  doctor                  check the llama.cpp build against this machine (same as `plan-gpus doctor`)\n"
    "`localcrew run --help` and `localcrew resume --help` show each one's options."
)


def _resume_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="localcrew resume",
                                description="Resume an interrupted run from its last completed step.")
    p.add_argument("run_dir", help="the run's folder (runs/<id>/, printed when the run started)")
    p.add_argument("--project", default=".", help="project folder with the three YAML files (default: .)")
    return p


def localcrew(argv: Sequence[str] | None = None) -> int:
    """`localcrew [run] [...]` or `localcrew resume RUN_DIR`; `localcrew --help` lists both."""
    go_offline()
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        _run_parser("localcrew").print_help()
        print("\n" + LOCALCREW_COMMANDS)
        return 0
    if args[:1] == ["doctor"]:
        from crew.cli import main as plan_gpus

        return plan_gpus(args)
    try:
        if args[:1] == ["resume"]:
            ns = _resume_parser().parse_args(args[1:])

            def body() -> int:
                from crew.config import load_project
                from crew.run.resume import resume_run

                resume_run(load_project(Path(ns.project).resolve()), Path(ns.run_dir), say=_console_say())
                return 0

            return _guard("localcrew", body)
        ns = _run_parser("localcrew run").parse_args(args[1:] if args[:1] == ["run"] else args)
    except SystemExit as exc:  # argparse printed its usage error (2) or a subcommand's help (0)
        return int(exc.code or 0) and 2
    return _guard("localcrew", lambda: _do_run(ns, "localcrew"))
