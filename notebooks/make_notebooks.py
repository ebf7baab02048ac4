"""Writes the walkthrough notebooks from these cell lists, outputs stripped (CI executes them fresh).

    uv run python notebooks/make_notebooks.py

Notebooks only call the package: nothing is defined here that the package should own.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import os, pathlib
from crew.offline import go_offline
go_offline()  # telemetry, tracing and litellm's price-map download off
ROOT = pathlib.Path.cwd()
while not (ROOT / "agents.yaml").exists():
    ROOT = ROOT.parent
ROOT"""

RUN_CREW = [
    new_markdown_cell("# 02 — Run the crew\n\nThis runs the real crew — manager, developer, tester, "
                      "documentation — on a small project task. With no GPU here, every agent runs on the embedded "
                      "SmolLM2-135M model through one llama.cpp server on 127.0.0.1. The tests the tester writes are "
                      "**really executed** in a sandbox; the verdict comes from pytest."),
    new_code_cell(SETUP),
    new_markdown_cell("## The plan\n\nThe planner decides where each agent's model runs. On this machine there is "
                      "no GPU, so every agent goes on the embedded CPU model."),
    new_code_cell("""from crew.config import load_project
from crew.planner.build import plan_project
project = load_project(ROOT)
plan = plan_project(project)
[(a.name, a.model, a.placement, a.num_ctx) for a in plan.agents]"""),
    new_markdown_cell("## Run it\n\nA tiny task keeps this quick. Progress lines show each agent, each task and each "
                      "real test round."),
    new_code_cell("""import tempfile, shutil
from crew.workflow import run
work = pathlib.Path(tempfile.mkdtemp(prefix="localcrew-nb-"))
for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
    shutil.copy(ROOT / name, work / name)
result = run(load_project(work), task="Write add.py with a function `add(a, b)` that returns a + b.")
result.ok, result.rounds, result.run_dir.name"""),
    new_markdown_cell("## The files it wrote"),
    new_code_cell("""sorted(str(p.relative_to(result.run_dir)) for p in result.run_dir.rglob("*")
       if p.is_file() and "servers" not in p.parts and "__pycache__" not in p.parts)"""),
    new_markdown_cell("## The real pytest results of each round"),
    new_code_cell("""for out in sorted(result.run_dir.glob("pytest-round-*.txt")):
    print(out.name, "→", (out.read_text().strip().splitlines() or ["(no output)"])[-1])"""),
    new_markdown_cell("## The report"),
    new_code_cell("""from IPython.display import Markdown
Markdown(result.report_path.read_text())"""),
    new_markdown_cell("## On real GPUs\n\n- Run `plan-gpus` to see where each agent's model would go on your GPUs "
                      "(or `plan-gpus --profile 2x-rtx3060` for a built-in rig).\n- The default `agents.yaml` asks for "
                      "Ollama tags such as `ollama/qwen2.5-coder:14b`; with `backend: llamacpp` the GGUF files are "
                      "read from your Ollama store, with `backend: ollama` an `ollama serve` is started per GPU, "
                      "pinned with `CUDA_VISIBLE_DEVICES`.\n- Then `crewai run` as here."),
]


def write(name: str, cells: list[nbformat.NotebookNode]) -> None:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    nbformat.write(nb, HERE / name)


def main() -> None:
    write("02_run_the_crew.ipynb", RUN_CREW)


if __name__ == "__main__":
    main()
