"""`plan-gpus [--layout FILE | --profile NAME] [--agents FILE] [--json] [--save FILE] [--strict]`,
`plan-gpus profiles`.

The dry run: where each agent's model goes, what each GPU will carry, and the exact command of each server,
without starting anything. Exit 0 when every agent is placed, 1 when not, 2 on bad input (cli.py) and, with
--strict, when a model an agent lists is left out of the plan.
Imports stay light: no crewai, litellm or llama_cpp; rich only when printing tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crew.errors import ConfigError


def register(name: str, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    if name == "profiles":
        parser.description = "List the built-in rig profiles for `plan-gpus --profile NAME`."
        parser.add_argument("--json", action="store_true", help="print them as JSON")
        return run_profiles
    parser.description = (
        "Plan which GPU each agent's model goes on, and show it: GPUs, agents, warnings and "
        "the launch command of each server. Nothing is started."
    )
    add_plan_inputs(parser)
    parser.add_argument(
        "--json", action="store_true", help="print the plan as JSON (schema localcrew.plan/1)"
    )
    parser.add_argument(
        "--save", metavar="FILE", help="write the plan for `crewai run` / `localcrew run --plan`"
    )
    parser.add_argument(
        "--strict", action="store_true",
        help="exit 2 when a model an agent lists is left out of the plan (file not found, not a GGUF, "
        "unknown tag), instead of planning without it",
    )
    return run_plan


def add_plan_inputs(parser: argparse.ArgumentParser) -> None:
    """--layout | --profile and --agents: what a plan is made from (plan and pull share them)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--layout", metavar="FILE", help="gpu_layout.yaml to use (default: ./gpu_layout.yaml)")
    where.add_argument("--profile", metavar="NAME", help="plan for a built-in rig (see `plan-gpus profiles`)")
    parser.add_argument("--agents", metavar="FILE", help="agents.yaml to use (default: ./agents.yaml)")


def plan_inputs(ns: argparse.Namespace) -> tuple[Any, Any]:
    """(agents, layout) from the flags of `add_plan_inputs`, API endpoints checked."""
    from crew.config import LayoutConfig, load_agents, load_layout
    from crew.config.project import check_api_endpoints

    root = Path.cwd()
    agents = load_agents(Path(ns.agents) if ns.agents else root / "agents.yaml")
    layout_file = Path(ns.layout) if ns.layout else root / "gpu_layout.yaml"
    # with --profile and no layout file, the defaults are enough: the profile brings the GPUs
    layout = (
        load_layout(layout_file) if ns.layout or layout_file.is_file() or not ns.profile else LayoutConfig()
    )
    check_api_endpoints(agents, layout)  # the same check, and words, as a run's
    return agents, layout


def run_plan(ns: argparse.Namespace) -> int:
    from crew.planner.build import plan_for
    from crew.planner.plan import plan_to_json
    from crew.serving.launch import launch_specs

    agents, layout = plan_inputs(ns)
    plan = plan_for(agents, layout, profile=ns.profile)
    from crew.models.server_binary import find_server_binary

    specs = launch_specs(plan, layout, server_binary=find_server_binary())
    data = plan_to_json(plan)
    if ns.save:
        try:
            Path(ns.save).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write the plan: {exc.strerror}", where=ns.save, fix="choose a writable path"
            ) from None
    if ns.json:
        data["servers"] = [s.as_json() for s in specs]
        print(json.dumps(data, indent=2))
    else:
        from rich.console import Console

        from crew.planner.render import plan_view

        console = Console()
        for part in plan_view(plan, specs):
            console.print(part, soft_wrap=True)  # commands stay on one line, to be copied whole
        if ns.save:
            console.print(
                f"saved to {ns.save}: `localcrew run --plan {ns.save}` (or LOCALCREW_PLAN={ns.save} "
                "crewai run) applies it"
            )
    if ns.strict and plan.left_out:
        x = plan.left_out[0]
        more = f" (and {len(plan.left_out) - 1} more in the plan)" if len(plan.left_out) > 1 else ""
        raise ConfigError(f"model {x.model} is left out of the plan: {x.reason}{more}",
                          where=f"agents.yaml: {x.agent}",
                          fix=f"{x.fix or 'correct it'}; or remove it from the agent's models, or drop --strict")
    return 0 if plan.feasible else 1


def run_profiles(ns: argparse.Namespace) -> int:
    from crew.hardware.profiles import PROFILES
    from crew.units import gib

    rows = [
        {
            "name": p.name,
            "description": p.description,
            "ram_bytes": p.ram_bytes,
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "total_bytes": g.total_bytes,
                    "compute_capability": g.compute_capability,
                }
                for g in p.gpus
            ],
            "exclude": [{"compute_capability": r.compute_capability, "reason": r.reason} for r in p.exclude],
        }
        for p in PROFILES.values()
    ]
    if ns.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(name) for name in PROFILES)
    for p in PROFILES.values():
        gpus = ", ".join(
            f"{g.name.replace('NVIDIA GeForce ', '')} {gib(g.total_bytes, 0)}" for g in p.gpus
        )
        sys.stdout.write(f"{p.name:<{width}}  {p.description}" + (f"  [{gpus}]" if gpus else "") + "\n")
    return 0
