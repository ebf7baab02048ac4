"""Planner speed: `plan-gpus --profile 4x-rtx3060` end to end, and a fleet of 64 agents x 32 GPUs on 8 hosts.

    uv run python benchmarks/bench_planner.py [--repeats 5]

1. The CLI as a user runs it (a fresh process each time: interpreter start, imports, plan, rich output),
   median wall time over the repeats. Budget: 0.5 s. It must not import crewai, litellm or llama_cpp; the
   benchmark checks that too.
2. The fleet, planned in-process through the same adapter `plan-gpus --layout` uses (declared GPUs, the
   shipped agents.yaml's four agents repeated 16 times): wall time, nodes searched, the objective, and
   whether optimality was proven within the node budget. Budget: 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crew.config import AgentConfig, LayoutConfig, gpu_entries, load_agents  # noqa: E402
from crew.planner.build import plan_for  # noqa: E402

# 8 hosts x 4 GPUs: five 4x RTX 3060 rigs, two 4x RTX 3090, one 2x 3090 + 2x 4060 Ti 16 GB
FLEET = tuple(
    {"host": f"ws{h}", "name": name, "memory_gib": gib, "count": n}
    for h, cards in enumerate([[("RTX 3060", 12, 4)]] * 5 + [[("RTX 3090", 24, 4)]] * 2
                              + [[("RTX 3090", 24, 2), ("RTX 4060 Ti", 16, 2)]])
    for name, gib, n in cards
)


def _fix_indices(gpus: tuple[dict[str, object], ...]) -> tuple[dict[str, object], ...]:
    """Entries of one host after the first start where the previous ones ended."""
    seen: dict[object, int] = {}
    out = []
    for g in gpus:
        out.append({**g, "index": seen.get(g["host"], 0)})
        seen[g["host"]] = seen.get(g["host"], 0) + int(g["count"])  # type: ignore[call-overload]
    return tuple(out)


def fleet_agents() -> dict[str, AgentConfig]:
    base = load_agents(ROOT / "agents.yaml")
    return {f"{a.name}-{k}": replace(a, name=f"{a.name}-{k}") for k in range(16) for a in base.values()}


def bench_cli(repeats: int) -> None:
    cmd = [sys.executable, "-m", "crew.cli", "--profile", "4x-rtx3060"]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)  # warm the bytecode cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t)
        assert done.returncode == 0, done.stderr
    probe = subprocess.run([sys.executable, "-c", "import sys; from crew.cli import main; "
                            "main(['--profile', '4x-rtx3060', '--json']); "
                            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                            "('crewai', 'litellm', 'llama_cpp')), file=sys.stderr)"],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    print(f"plan-gpus --profile 4x-rtx3060: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s over {repeats} runs; heavy modules imported: {probe.stderr.strip()}")


def bench_fleet(repeats: int) -> None:
    agents = fleet_agents()
    layout = LayoutConfig(gpus=gpu_entries(_fix_indices(FLEET)))
    times, plan = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        plan = plan_for(agents, layout)
        times.append(time.perf_counter() - t)
    assert plan is not None
    hosts = len({g.host for g in plan.gpus})
    on = sum(a.placement in ("gpu", "split") for a in plan.agents)
    print(f"fleet {len(agents)} agents x {len(plan.gpus)} GPUs on {hosts} hosts: median "
          f"{statistics.median(times):.3f} s, min {min(times):.3f} s; {on} on GPUs, "
          f"feasible={plan.feasible}, proven optimal={plan.optimal}, "
          f"ranks={sum(a.candidate_rank for a in plan.agents)}")
    search = [w for w in plan.warnings if w.startswith("the search")]
    print("  " + (search[0] if search else "search complete: proven optimal"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bench_cli(args.repeats)
    bench_fleet(args.repeats)


if __name__ == "__main__":
    main()
