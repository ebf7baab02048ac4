"""Which llama.cpp build: prompt and decode tokens/s of the embedded model, per build, side by side (issue 23).

Each candidate is a llama_cpp package somewhere on disk (the venv's portable build, and e.g. a native build
installed with `uv pip install --target DIR`). Every repetition runs each candidate once, in turn, in a fresh
child process (one thread count for all), so drifts of the machine hit them alike; the table gives the
median and the range, and the ratio to the first candidate from the same run.

    uv run python benchmarks/bench_build.py --build portable= --build native=/tmp/llama-native --reps 5

`NAME=` (empty path) is the venv's own llama_cpp. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from crew.models.build_check import GGML_TO_CPUINFO, compiled_features

CHILD = r"""
import json, sys, time, llama_cpp
model, n_prompt, n_gen, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model_path=model, n_ctx=n_prompt + n_gen + 16, n_batch=512, n_threads=threads,
                      verbose=False, seed=0)
info = llama_cpp.llama_print_system_info().decode()
tokens = llm.tokenize(("def f(x):\n    return x * 2\n" * 400).encode())[:n_prompt]
t0 = time.perf_counter(); llm.eval(tokens); t1 = time.perf_counter()
out = []
for _ in range(n_gen):
    tok = llm.sample(temp=0.0)
    out.append(tok)
    llm.eval([tok])
t2 = time.perf_counter()
print(json.dumps({"prompt_tps": n_prompt / (t1 - t0), "decode_tps": n_gen / (t2 - t1), "info": info}))
"""


def run_once(path: str, model: Path, n_prompt: int, n_gen: int, threads: int) -> dict[str, float | str]:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model), str(n_prompt), str(n_gen), str(threads)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR holding llama_cpp (empty: the venv's)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=256, help="prompt tokens per run")
    ap.add_argument("--gen", type=int, default=64, help="decoded tokens per run")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", help="GGUF (default: the embedded model)")
    ap.add_argument("--json", help="write the raw runs here")
    args = ap.parse_args(argv)
    if args.model:
        model = Path(args.model)
    else:
        from crew.models.embedded import embedded_model_path

        model = embedded_model_path()
    builds = [tuple(b.split("=", 1)) for b in args.build]
    runs: dict[str, list[dict[str, float | str]]] = {name: [] for name, _ in builds}
    for rep in range(args.reps):
        for name, path in builds:
            r = run_once(path, model, args.prompt, args.gen, args.threads)
            runs[name].append(r)
            shown = r.get("error") or (f"prompt {float(r['prompt_tps']):.1f} t/s, "
                                       f"decode {float(r['decode_tps']):.1f} t/s")
            print(f"rep {rep + 1}/{args.reps} {name:<10} {shown}", flush=True)
    print(f"\n{model.name}, {args.prompt}-token prompt, {args.gen} decoded tokens, {args.threads} threads, "
          f"{args.reps} runs each (median [min–max]; ratio to {builds[0][0]})\n")
    print("| build | compiled CPU features | prompt tokens/s | decode tokens/s | prompt ratio | decode ratio |")
    print("|---|---|---|---|---|---|")
    base: dict[str, float] = {}
    for name, _ in builds:
        good = [r for r in runs[name] if "error" not in r]
        if not good:
            print(f"| {name} | — | failed: {runs[name][0].get('error')} | | | |")
            continue
        compiled = compiled_features(str(good[0]["info"]))
        feats = " ".join(g for g in GGML_TO_CPUINFO if g in compiled) or "?"
        row = []
        for key in ("prompt_tps", "decode_tps"):
            vals = [float(r[key]) for r in good]
            med = statistics.median(vals)
            base.setdefault(key, med)
            row.append((f"{med:.1f} [{min(vals):.1f}–{max(vals):.1f}]", med / base[key]))
        print(f"| {name} | {feats} | {row[0][0]} | {row[1][0]} | {row[0][1]:.3f} | {row[1][1]:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
