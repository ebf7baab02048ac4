"""Notebook 01: the seed rigs planned and charted, then the YAML a user writes for their own cards, a
fleet and a request that does not fit, each planned by the real `plan-gpus` command."""

from __future__ import annotations

from nb_setup import SETUP, code, md

PLAN_GPUS = [
    md("# 01 — Plan the crew's GPUs\n\n"
       "`plan-gpus` decides which GPU each agent's model goes on, from an estimate of what llama.cpp will "
       "allocate (weights, KV cache, compute buffer, CUDA overhead) and an exact solver. Nothing is started "
       "and no GPU is needed: the built-in rig profiles, or the cards you declare in `gpu_layout.yaml`, say "
       "what the GPUs are.\n\n"
       "This notebook plans the crew of this repository's `agents.yaml` for each seed rig with charts, then "
       "does what you would do for your own machines: write `gpu_layout.yaml` with your cards, exclude one, "
       "declare a fleet of hosts, ask for more than fits and read the way out. Each of those runs the real "
       "`plan-gpus` command in a scratch project folder, exactly as in a terminal there."),
    code("%matplotlib inline\n" + SETUP),
    md("The scratch folder gets a copy of the project's `agents.yaml`; the YAML files below are written "
       "there, and `plan-gpus` runs there (it reads `./agents.yaml` and `./gpu_layout.yaml` unless told "
       "otherwise). `write` shows each file as you would type it."),
    code("""import shutil
import subprocess
import sys
import tempfile

work = pathlib.Path(tempfile.mkdtemp(prefix="localcrew-nb-"))
shutil.copy(ROOT / "agents.yaml", work / "agents.yaml")
PLAN_GPUS = pathlib.Path(sys.executable).parent / "plan-gpus"  # the package's console script


def plan_gpus(*args: str) -> None:
    \"\"\"`plan-gpus ARGS` in the scratch folder: what it prints, and its exit code.\"\"\"
    print("$ plan-gpus", *args)
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run([str(PLAN_GPUS), *args], cwd=work, env=env, capture_output=True, text=True)
    print(done.stdout + done.stderr, end="")
    print("exit code:", done.returncode)


def write(name: str, text: str) -> None:
    (work / name).write_text(text, encoding="utf-8")
    print(f"# {name}\\n{text}", end="")


plan_gpus("profiles")"""),
    md("## The crew's requests\n\nEach agent asks for a ranked list of models (its `llm`, then its "
       "`fallbacks`) at its context length (`num_ctx`); the planner picks the best candidate that fits, "
       "agent by agent, with the KV cache type of `gpu_layout.yaml` (`kv_type`, q8_0 unless set)."),
    code("""from crew.config import load_project

project = load_project(ROOT)
for agent in project.agents.values():
    print(f"{agent.name:14} num_ctx {agent.num_ctx:6}  candidates: {', '.join(agent.candidates)}")"""),
    md("## The seed rigs\n\nOne plan per rig: 2×, 3× and 4× RTX 3060 12 GB, one RTX 3090 24 GB, and an RTX 3090 "
       "with an RTX 5060 Ti that the rig excludes (compute capability 12.0: the llama.cpp build has no sm_120 "
       "kernels). `plan_project` is what `plan-gpus --profile NAME` calls; here it gives the plans to chart."),
    code("""from crew.planner.build import plan_project

RIGS = ["2x-rtx3060", "3x-rtx3060", "4x-rtx3060", "rtx3090", "rtx3090+rtx5060ti"]
plans = {rig: plan_project(project, profile=rig) for rig in RIGS}
for rig, plan in plans.items():
    print(f"{rig}: feasible={plan.feasible}")
    for a in plan.agents:
        print(f"    {a.name:14} {a.model.removeprefix('ollama/'):22} GPU {'+'.join(map(str, a.gpu_indices))}")"""),
    md("With four cards every agent gets a GPU of its own, and the developer gets its first choice, the 14B "
       "coder. With two, agents share cards. The 3090 takes all four agents on one card."),
    code("""gpus_used = {a.gpu_indices for a in plans["4x-rtx3060"].agents}
print("4x-rtx3060: one agent per GPU:", len(gpus_used) == 4 and all(len(g) == 1 for g in gpus_used))"""),
    md("### The tables and the VRAM chart, rig by rig\n\n"
       "The GPU table is the one `plan-gpus` prints; the chart stacks, per GPU, the model weights, the KV "
       "cache, llama.cpp's compute buffer, the CUDA context overhead, the reserve kept free "
       "(`reserve_mib`) and what is left."),
    code("""from IPython.display import display
from rich.console import Console

from crew.planner.chart import vram_chart
from crew.planner.render import agents_table, gpu_table

console = Console(width=140, highlight=False)  # tables as HTML here, as text in the text/plain output
for rig in RIGS:
    plan = plans[rig]
    console.rule(rig)
    console.print(gpu_table(plan), agents_table(plan))
    for g in plan.gpus:
        if g.excluded:
            console.print(f"GPU {g.index} excluded: {g.exclusion_reason}")
    display(vram_chart(plan))"""),
    md("## Your own cards: `gpus:` and `exclude:`\n\n"
       "The shipped `gpu_layout.yaml` says `gpus: detect`: `plan-gpus` asks the NVIDIA driver (NVML). To "
       "plan for cards you do not have at hand, or to plan on a machine without the driver, list them. "
       "`name` and `memory_gib` are required; `count` repeats an entry, and `uuid`, `bandwidth_gbs`, "
       "`compute_capability` and `index` are optional (the card table fills in bandwidth and compute "
       "capability for known cards). Here two RTX 3060s and an RTX 3090, with the second 3060 kept out "
       "because it drives the display: an `exclude:` rule selects cards by `index`, `name`, `uuid`, "
       "`compute_capability` or `host`, and its `reason` is shown in the plan."),
    code("""write("my_rig.yaml", \"\"\"\\
gpus:
  - {name: RTX 3060, memory_gib: 12, count: 2}
  - {name: RTX 3090, memory_gib: 24}
exclude:
  - {index: 1, reason: "drives the display"}
reserve_mib: 512
\"\"\")"""),
    md("The same as `plan-gpus --layout my_rig.yaml` in a terminal (or plain `plan-gpus` once it is your "
       "`gpu_layout.yaml`). The GPU table, the excluded card and why, the agents table, warnings, and the "
       "launch command of each server: one llama.cpp server per GPU, pinned with `CUDA_VISIBLE_DEVICES` "
       "and listening on 127.0.0.1 only, all agents on a GPU sharing it (with the JSON config of a server "
       "that holds several models). Models not on disk yet are marked \"to pull first\"; nothing is started."),
    code("""plan_gpus("--layout", "my_rig.yaml", "--save", "my_rig_plan.json")"""),
    md("`--save` wrote the plan that `localcrew run --plan my_rig_plan.json` applies. Read back, it charts "
       "like the seed rigs (the excluded card has no bar):"),
    code("""from crew.planner.saved import read_saved_plan

my_rig = read_saved_plan(work / "my_rig_plan.json")
vram_chart(my_rig, title="my_rig.yaml: 2× RTX 3060 (one excluded) + RTX 3090")"""),
    md("## A fleet of machines\n\n"
       "GPUs on several machines are one list with a `host` per entry; each agent's model goes on one GPU of "
       "one host (a split never crosses hosts). An exclusion by compute capability (`\"12.0\"`, or `\"12\"` for "
       "any 12.x) keeps every Blackwell card out, whatever host it is on."),
    code("""write("fleet.yaml", \"\"\"\\
gpus:
  - {host: ws1, name: RTX 3060, memory_gib: 12, count: 2}
  - {host: ws2, name: RTX 3090, memory_gib: 24}
  - {host: ws3, name: RTX 5060 Ti, memory_gib: 16}
exclude:
  - {compute_capability: "12.0", reason: "no sm_120 kernels in this llama.cpp build"}
\"\"\")"""),
    md("The launch commands are per host (`# ws1-gpu0 on ws1: ...`). Ports count up from `base_port` on "
       "each host."),
    code("""plan_gpus("--layout", "fleet.yaml", "--save", "fleet_plan.json")"""),
    code("""fleet = read_saved_plan(work / "fleet_plan.json")
vram_chart(fleet, title="fleet.yaml: three hosts, the 5060 Ti excluded")"""),
    md("### The seed fleet, and running one crew on it\n\n"
       "The built-in `fleet-5` profile is the five-machine case: four workstations (4× RTX 3060; an RTX 3090 "
       "with an RTX 5060 Ti; 2× RTX 3060; an RTX 3090) and the laptop that runs localcrew, whose 4 GB RTX 3050 "
       "is excluded so that its agents would use their API endpoint. Every server lands on a workstation."),
    code("""plan_gpus("--profile", "fleet-5")"""),
    md("Declared hosts plan, but one crew runs across machines only on a **Ray cluster**: each GPU machine "
       "joins it with `ray start --address=<head>:6379 --resources='{\"gpu:<UUID>\": 1}'` (token "
       "authentication on, a private network), and `gpu_layout.yaml` says `cluster: <head>:6379` (or "
       "`cluster: auto`) instead of listing `gpus:`. Then a probe on every node reads its cards, `plan-gpus` "
       "plans over them, and `localcrew run` starts each server on its node through a Ray actor, pinned by "
       "UUID and listening on that node's loopback only, reached from here through a loopback relay; a node "
       "lost mid-run fails over like a crashed server. This notebook starts no cluster; "
       "[docs/fleet.md](../docs/fleet.md) says how it is tested (a local multi-node cluster on one machine) "
       "and what is left. The `cluster:` key is checked when the file is read:"),
    code("""write("gpu_layout.yaml", "cluster: head-without-port\\n")
plan_gpus()
(work / "gpu_layout.yaml").unlink()"""),
    md("## A request that does not fit\n\n"
       "Suppose the developer insists on the 14B coder with a 32k context, no fallback and no CPU model. In "
       "`agents.yaml` that is three lines of its entry (the rest of the entry stays as it is):"),
    code("""import yaml


def edit_agent(name: str, lines: str) -> None:
    \"\"\"Change some keys of one agent in the scratch agents.yaml, and show them as you would type them.\"\"\"
    agents = yaml.safe_load((work / "agents.yaml").read_text(encoding="utf-8"))
    agents[name].update(yaml.safe_load(lines))
    (work / "agents.yaml").write_text(yaml.safe_dump(agents, sort_keys=False), encoding="utf-8")
    print(f"# agents.yaml\\n{name}:\\n  ...\\n" + "".join(f"  {line}\\n" for line in lines.splitlines()), end="")


edit_agent("developer", \"\"\"\\
fallbacks: []
cpu_model: none
num_ctx: 32768\"\"\")"""),
    md("On two RTX 3060s `plan-gpus` exits 1 and says which agent cannot be placed, why, in numbers, and "
       "which changes would each be enough on their own (each one checked by solving again, not guessed). "
       "The explanation comes after the tables, under *Not placed*."),
    code("""plan_gpus("--profile", "2x-rtx3060")"""),
    md("Take the first way out it lists, a shorter context, and plan again:"),
    code("""edit_agent("developer", "num_ctx: 16384")
plan_gpus("--profile", "2x-rtx3060", "--save", "fixed_plan.json")"""),
    code("""vram_chart(read_saved_plan(work / "fixed_plan.json"), title="2x-rtx3060, developer at num_ctx 16384")"""),
    md("`crewai run` and `localcrew run` refuse an infeasible plan before starting anything, with the same "
       "explanation.\n\n"
       "For your own machine: put your `gpus:` list and `exclude:` rules in the project's `gpu_layout.yaml` "
       "(or keep `gpus: detect`), run `plan-gpus`, and `plan-gpus --save plan.json` writes the plan that "
       "`localcrew run --plan plan.json` applies."),
    code("""shutil.rmtree(work)
print("removed the scratch folder")"""),
]
