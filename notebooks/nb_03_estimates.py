"""Notebook 03: the estimator against llama.cpp's own buffers, and GPU readings recorded by others replayed."""

from __future__ import annotations

from nb_setup import SETUP, code, md

ESTIMATES = [
    md("# 03 — Estimates against reality\n\n"
       "The planner never loads a model: it predicts llama.cpp's buffers from the GGUF header "
       "(`crew.planner.vram.estimate`). Here we check that prediction against what llama.cpp itself "
       "allocates, by loading the embedded default, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), on the CPU at several "
       "context lengths and KV cache types and reading the buffer sizes llama.cpp logs "
       "(`crew.planner.measured`).\n\n"
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
    code("""from crew.planner.measured import compare, measure_llama_cpp
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

# plain text for the output below; without force_jupyter=False rich would also display it as HTML in a kernel
console = Console(file=io.StringIO(), width=130, record=True, force_jupyter=False)
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
console = Console(file=io.StringIO(), width=130, record=True, force_jupyter=False)
console.print(replay_view(single, planned))
print(console.export_text())"""),
]

