"""The walkthrough notebooks (notebooks/, issue #7) run top to bottom, so they cannot rot.

They are committed with their outputs, so they read on a repository page: the fast test checks that each
committed notebook's cells are exactly what notebooks/make_notebooks.py generates, and that every code cell
was executed, in order, without an error. The slow tests execute each notebook afresh with nbclient in a
python3 kernel of this environment, from notebooks/, with a timeout per cell, in memory (the committed files
are never written): no cell may raise, and a few key outputs are checked. 01 and 03 load quickly, 02 runs the
real crew on the embedded model.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _execute(name: str, cell_timeout: int) -> tuple[str, set[str]]:
    """Run the notebook; return all its text output and the MIME types it displayed."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NB_DIR)}})
    started = time.monotonic()
    client.execute()  # raises CellExecutionError on the first cell that fails
    print(f"{name}: executed in {time.monotonic() - started:.1f} s")
    texts, kinds = [], set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{name}: {out.get('ename')}: {out.get('evalue')}"
            if out["output_type"] == "stream":
                texts.append(out["text"])
            else:
                data = out.get("data", {})
                kinds.update(data)
                texts.append(str(data.get("text/plain", "")))
                texts.append(str(data.get("text/markdown", "")))
    return _ANSI.sub("", "\n".join(texts)), kinds  # rich colours its output in a kernel


def test_committed_notebooks_are_the_generated_ones_executed() -> None:
    done = subprocess.run([sys.executable, str(NB_DIR / "make_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    import nbformat

    paths = sorted(NB_DIR.glob("*.ipynb"))
    assert [p.name for p in paths] == ["01_plan_gpus.ipynb", "02_run_the_crew.ipynb",
                                       "03_estimates_vs_reality.ipynb"]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        # executed top to bottom in one kernel: `make_notebooks.py --execute NAME` writes it so
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
            f"{path.name} is not executed: run `uv run --no-sync python notebooks/make_notebooks.py "
            f"--execute {path.name}`")
        for i, cell in enumerate(code):
            assert cell.outputs, f"{path.name}: code cell {i} has no output"
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{path.name}: code cell {i}: {errors[0].ename}: {errors[0].evalue}"
            assert "execution" not in cell.metadata, f"{path.name}: timing metadata left in cell {i}"
        assert str(ROOT) not in path.read_text(encoding="utf-8"), f"{path.name} carries this checkout's path"


@pytest.mark.slow
def test_01_plan_gpus() -> None:
    text, kinds = _execute("01_plan_gpus.ipynb", cell_timeout=120)
    assert "4x-rtx3060: one agent per GPU: True" in text
    for rig in ("2x-rtx3060", "3x-rtx3060", "4x-rtx3060", "rtx3090", "rtx3090+rtx5060ti"):
        assert f"{rig}: feasible=True" in text
    assert "excluded: compute capability 12.0" in text
    # the YAML a user writes, planned by the real plan-gpus: their own cards, one excluded by index; a fleet
    # of hosts with a compute-capability rule, launched per host
    assert "- {index: 1, reason: \"drives the display\"}" in text
    assert "GPU 1 (RTX 3060) excluded: drives the display" in text
    assert "(RTX 5060 Ti) excluded: no sm_120 kernels in this llama.cpp build" in text
    # one server per model and GPU: `ws1-gpu0`, or `ws1-gpu0-<model>` where a GPU holds several models
    assert re.search(r"# ws1-gpu\d(-\S+)? on ws1:", text) and re.search(r"# ws2-gpu\d(-\S+)? on ws2:", text)
    # the seed fleet (the laptop's 4 GB card kept out) and the cluster key, checked when read
    assert "4 GB laptop GPU: its agents use their API endpoint" in text
    assert "gpu_layout.yaml: cluster: 'head-without-port' is neither `auto` nor host:port" in text
    assert "exit code: 2" in text
    # the infeasible request (an agents.yaml edit), explained, and the way out taken
    assert "num_ctx: 32768" in text and "developer: needs" in text and "`num_ctx: 16384` for developer" in text
    assert "Plan: 1 agent(s) cannot be placed.\nexit code: 1" in text
    fixed = text.split("$ plan-gpus --profile 2x-rtx3060 --save fixed_plan.json", 1)[1]
    assert re.search(r"developer\s+qwen2\.5-coder:14b\*\s+0\s+GPU \d\s+16384", fixed)
    # own cards, fleet, the way out: each placed, saved for `localcrew run --plan`, exit 0
    saved = re.findall(r"Plan: every agent is placed\.\nsaved to (\w+)\.json: .*?\nexit code: (\d+)", text, re.S)
    assert saved == [("my_rig_plan", "0"), ("fleet_plan", "0"), ("fixed_plan", "0")]
    assert "CUDA_VISIBLE_DEVICES=" in text and "127.0.0.1" in text
    assert "image/png" in kinds and "text/html" in kinds  # the VRAM charts and rich's tables


@pytest.mark.slow
def test_02_run_the_crew() -> None:
    text, kinds = _execute("02_run_the_crew.ipynb", cell_timeout=420)
    assert re.search(r"manager\s+embedded\s+on cpu", text)
    assert "exit code: 0" in text  # `localcrew run` without --strict: a completed run, whatever the verdict
    assert re.search(r"(PASS|FAIL) after \d+ test round", text)  # its progress, streamed
    m = re.search(r"passed: (True|False) \| test rounds: (\d+) \| run folder: (\S+)", text)
    assert m and int(m.group(2)) >= 1
    assert "report.md" in text and "pytest-round-1.txt →" in text and "code/add.py" in text
    assert "text/markdown" in kinds


@pytest.mark.slow
def test_03_estimates_vs_reality() -> None:
    text, kinds = _execute("03_estimates_vs_reality.ipynb", cell_timeout=180)
    assert "all within the targets of docs/estimator.md: True" in text
    assert len(re.findall(r"^\s+8192 q4_0\s+measured\s", text, re.M)) == 1
    # the recorded samples are shown as recorded, with their source, through the monitor's own view
    # (once each: the replay view is printed as text, not also displayed by rich as HTML)
    assert text.count("RECORDED on real NVIDIA GPUs") == 1 and text.count("RECORDED on a real NVIDIA GPU") == 1
    assert "club-3090/issues/1120" in text and "club-3090/issues/390" in text
    assert "GPU 1 (NVIDIA GeForce RTX 3090): VRAM 92.9 % used, above 92 %" in text
    assert "No alert threshold was crossed during the recording." in text
    assert "localcrew's plan, GPU 0:" in text and re.search(r"14\.65\s+│\s+[+-]\d", text)  # 15005 MiB vs plan
    assert "image/png" in kinds


def test_vram_chart_parts_add_up_to_each_card_and_skip_the_excluded_one() -> None:
    pytest.importorskip("matplotlib")
    from crew.config import load_project
    from crew.planner.build import plan_project
    from crew.planner.chart import GIB, PARTS, gpu_parts, vram_chart

    plan = plan_project(load_project(ROOT), profile="rtx3090+rtx5060ti")
    (used, used_parts), (excluded, excluded_parts) = gpu_parts(plan)
    assert len(used_parts) == len(PARTS)
    assert abs(sum(used_parts) - plan.gpus[0].total_bytes / GIB) < 1e-9
    assert "excluded" in excluded and not any(excluded_parts)
    fig = vram_chart(plan)
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "GiB"
