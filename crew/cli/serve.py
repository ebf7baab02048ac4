"""`plan-gpus up | down | status`: manage the model servers explicitly, outside a crew run.

`up` starts (or reuses) one server per model and GPU from the plan and leaves them running; `crewai run` then reuses
them. State and logs live in .localcrew/ of the project folder.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from crew.errors import InfeasiblePlanError, UsageError
from crew.units import LOCAL, gib


def register(name: str, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    if name == "up":
        parser.description = ("Start the plan's model servers (one per model and GPU, pinned), check each "
                              "model sits where planned, and leave them running.")
        parser.add_argument("--plan", metavar="FILE", help="a plan saved by `plan-gpus --save` (default: plan now)")
        parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                            help="seconds to wait for each server to answer its health check (default 300)")
        return _up
    if name == "down":
        parser.description = "Stop the servers `plan-gpus up` (or keep_warm) left running."
        return _down
    parser.description = "Show each recorded server: pid, port, pinning, models, health, planned vs reported."
    parser.add_argument("--json", action="store_true", help="print the servers as JSON")
    return _status


def _up(args: argparse.Namespace) -> int:
    from rich.console import Console

    from crew.config import load_project
    from crew.planner.build import plan_for_run
    from crew.planner.render import explain_unplaced
    from crew.serving import registry
    from crew.serving.session import ServerSession

    console = Console(highlight=False)
    root = Path(args.project).resolve()
    project = load_project(root)
    plan = plan_for_run(project, Path(args.plan) if args.plan else None)
    if not plan.feasible:
        raise InfeasiblePlanError("the plan cannot place every agent", where=project.layout.path,
                                  fix=explain_unplaced(plan))
    remote = sorted({a.host for a in plan.agents if a.placement != "api"} - {LOCAL})
    if remote and project.layout.cluster is not None:
        # An actor lives as long as the process that made it: servers on other nodes would stop as `up` exits.
        raise UsageError(f"the plan has servers on other nodes ({', '.join(remote)}), which live only as long "
                         "as a run", where=f"{project.layout.path}: cluster",
                         fix="run the crew (`localcrew run`): it starts them; `plan-gpus up` keeps this "
                             "machine's servers only")
    # The run's own session: the same reuse, pinning, residency check and Ollama preparation, kept running.
    session = ServerSession(project, plan, state_dir=root / registry.STATE_DIR / "logs", keep=True,
                            say=console.print, timeout_s=args.timeout)
    with session.running():
        pass
    console.print(f"{len(session.records)} server(s) up; stop them with `plan-gpus down`")
    return 0


def _down(args: argparse.Namespace) -> int:
    from crew.serving import registry

    root = Path(args.project).resolve()
    records = registry.load(root)
    for rec in records.values():  # only a process verified to be the recorded server is signalled
        print(f"{rec.server_id}: {registry.stop_record(rec)} (pid {rec.pid})")
    registry.save(root, {})  # keeps any server that is still running (a failed stop, another run's)
    if not records:
        print("no servers recorded")
    return 0


def _status(args: argparse.Namespace) -> int:
    from crew.serving import registry
    from crew.serving.llamacpp_residency import reported_buffers
    from crew.serving.process import healthy
    from crew.serving.procinfo import owns_listener
    from crew.serving.spec import LaunchSpec

    root = Path(args.project).resolve()
    rows = []
    for rec in registry.load(root).values():
        probe = LaunchSpec(server_id=rec.server_id, backend=rec.backend, program=(), extra_env=rec.env, port=rec.port,
                           log_name="", models=())
        log = Path(rec.log)
        logged = reported_buffers(log.read_text(errors="replace") if log.exists() else "")
        alive = rec.alive()  # the recorded process itself (start time and command line match)
        ours = alive and owns_listener(rec.pid, probe.bind_address, rec.port)  # it, not a neighbour, answers
        rows.append({**rec.__dict__, "alive": alive, "healthy": ours and healthy(probe),
                     "reported_bytes": logged.total_bytes, "device_bytes": logged.device_bytes,
                     "up_s": round(time.time() - rec.started)})
    if args.json:
        print(json.dumps({"servers": rows}, indent=2))
        return 0
    if not rows:
        print("no servers recorded (start them with `plan-gpus up`)")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("server", "pid", "port", "CUDA_VISIBLE_DEVICES", "models", "health", "reported", "up")
    for r in rows:
        health = "[green]healthy[/]" if r["healthy"] else ("[yellow]alive[/]" if r["alive"] else "[red]dead[/]")
        sim = " (simulated)" if r["simulated"] else ""
        table.add_row(r["server_id"], str(r["pid"]), str(r["port"]), r["env"].get("CUDA_VISIBLE_DEVICES", "") + sim,
                      ", ".join(r["models"]), health, gib(r["reported_bytes"], 2), f"{r['up_s']} s")
    Console().print(table)
    return 0
