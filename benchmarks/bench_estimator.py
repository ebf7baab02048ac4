"""Estimator accuracy against llama.cpp's own buffers, and the time one estimate takes.

    uv run python benchmarks/bench_estimator.py [--markdown] [--quick] [--repeats N]

For the two embedded models (`embedded`, the Qwen2.5-Coder-0.5B default, and `embedded-tiny`, SmolLM2-135M)
and each synthetic GGUF (tests/fixtures_gguf.py), loads the model with
llama-cpp-python on the CPU under each accuracy setting, parses the buffer sizes llama.cpp logs, and prints
estimate / measured / error for weights, KV cache, compute buffer and total, flagging any term outside the
issue #3 targets. Then times `resolve_footprint` + `estimate` (header read + arithmetic) per model and for
catalog tags. `--markdown` prints the tables as Markdown (docs/estimator.md holds a copy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.models.embedded import EMBEDDED_REF, EMBEDDED_REFS, embedded_model_path  # noqa: E402
from crew.models.gguf import read_gguf  # noqa: E402
from crew.models.resolve import resolve_footprint  # noqa: E402
from crew.planner.measured import compare, measure_llama_cpp  # noqa: E402
from crew.planner.vram import RunSettings, estimate  # noqa: E402
from tests.fixtures_gguf import (  # noqa: E402
    EMBEDDED_SETTINGS,
    SYNTHETIC_MODELS,
    SYNTHETIC_SETTINGS,
    settings_label,
    write_synthetic_gguf,
)

MIB = 1 << 20
CATALOG_TAGS = ["qwen2.5-coder:14b", "llama3:70b-instruct-q2_K", "mixtral:8x7b", "gemma3:12b"]


def accuracy_rows(models: dict[str, Path]) -> list[list[str]]:
    rows: list[list[str]] = []
    for name, path in models.items():
        fp = read_gguf(path)
        for s in EMBEDDED_SETTINGS if name in EMBEDDED_REFS else SYNTHETIC_SETTINGS:
            measured, _ = measure_llama_cpp(path, s)
            row = [name, settings_label(s)]
            for c in compare(estimate(fp, s), measured):
                flag = "" if c.within_target else " **OUT**"
                row += [f"{c.estimate_bytes / MIB:.2f}", f"{c.measured_bytes / MIB:.2f}",
                        f"{c.error_bytes / MIB:+.2f} ({c.error_ratio:+.1%}){flag}"]
            rows.append(row)
    return rows


def timing_rows(models: dict[str, Path], repeats: int) -> list[list[str]]:
    rows = []
    refs = {name: str(path) for name, path in models.items()} | {t: t for t in CATALOG_TAGS}
    for name, ref in refs.items():
        resolve_footprint(ref)  # warm: imports, page cache
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            estimate(resolve_footprint(ref), RunSettings(ctx_tokens=2048, device="cpu"))
            times.append(time.perf_counter() - started)
        rows.append([name, f"{statistics.median(times) * 1000:.1f}", f"{max(times) * 1000:.1f}"])
    return rows


def show(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
        for r in [header, *rows]:
            print("  ".join(x.rjust(w) for x, w in zip(r, widths, strict=True)))
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--quick", action="store_true", help="the default embedded model only")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = {EMBEDDED_REF: embedded_model_path()}
        if not args.quick:
            models |= {ref: embedded_model_path(ref) for ref in EMBEDDED_REFS if ref != EMBEDDED_REF}
            for name, spec in SYNTHETIC_MODELS.items():
                models[name] = write_synthetic_gguf(Path(tmp) / f"{name}.gguf", **spec)
        started = time.perf_counter()
        rows = accuracy_rows(models)
        elapsed = time.perf_counter() - started
        cols = [f"{part} {kind}" for part in ("weights", "KV", "compute", "total")
                for kind in ("est MiB", "meas MiB", "error")]
        print(f"Estimate vs llama.cpp (CPU, llama-cpp-python), {len(rows)} loads in {elapsed:.1f} s\n")
        show(["model", "settings", *cols], rows, args.markdown)
        print(f"Time to estimate (header read + arithmetic), median / max of {args.repeats} runs\n")
        show(["model", "median ms", "max ms"], timing_rows(models, args.repeats), args.markdown)
    out_of_target = sum("OUT" in cell for r in rows for cell in r)
    print(f"{out_of_target} term(s) outside the targets")
    return 1 if out_of_target else 0


if __name__ == "__main__":
    raise SystemExit(main())
