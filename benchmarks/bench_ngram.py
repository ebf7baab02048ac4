"""n-gram drafting on this machine: llama-server with and without `--spec-type ngram-simple` (agents.yaml
`draft_model: ngram`), side by side in one run, on the requests the crew sends most: attempts at a module.

Prompts are the drafter's (crew/run/drafter.py) for development tasks (HumanEval/0-81 and our own), a fixed
sample. Two levels: one request at a time, greedy (the implement answer, its retries, fix rounds), and six at
once sampled at 0.8 with seeds of their own (the consensus's and second opinions' attempts beside the tester).
For each server setting: generated tokens over the wall time, tokens drafted and accepted, and how many greedy
answers came out the same as without drafting. Run it alone on the machine.

    uv run python benchmarks/bench_ngram.py [--tasks 8] [--max-tokens 400]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_quality  # noqa: E402

from crew.models.embedded import embedded_model_path  # noqa: E402
from crew.models.server_binary import find_server_binary  # noqa: E402
from crew.run.drafter import DRAFT_SUFFIX  # noqa: E402
from crew.serving.process import Supervisor, free_port  # noqa: E402
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec  # noqa: E402

CTX = 4096
SLOTS = 6


@dataclass(frozen=True)
class Row:
    setting: str
    at_once: int
    tokens: int
    accepted: int
    wall_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


def _ask(base_url: str, prompt: str, temperature: float, seed: int, max_tokens: int) -> tuple[int, int, str]:
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": temperature, "seed": seed}
    req = urllib.request.Request(base_url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=900) as resp:
        reply = json.load(resp)
    accepted = int((reply.get("timings") or {}).get("draft_n_accepted") or 0)
    return int(reply["usage"]["completion_tokens"]), accepted, str(reply["choices"][0]["message"]["content"])


def _level(spec: LaunchSpec, setting: str, prompts: list[str], at_once: int, max_tokens: int
           ) -> tuple[Row, list[str]]:
    temperature = 0.0 if at_once == 1 else 0.8
    jobs = [(p, 1000 + k) for p in prompts for k in (range(1) if at_once == 1 else range(3))]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        done = list(pool.map(lambda j: _ask(spec.base_url, j[0], temperature, j[1], max_tokens), jobs))
    wall = time.perf_counter() - t0
    return Row(setting, at_once, sum(d[0] for d in done), sum(d[1] for d in done), wall), [d[2] for d in done]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=8, help="development tasks in the sample")
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--json", type=Path, help="also write the table here")
    ns = ap.parse_args()
    binary = find_server_binary()
    if binary is None:
        print("no llama-server built (bash scripts/setup.sh sync builds it)", file=sys.stderr)
        return 2
    tasks = bench_quality.select("dev", None, 1)
    random.Random(7).shuffle(tasks)
    prompts = [t.prompt.strip() + DRAFT_SUFFIX for t in tasks[:ns.tasks]]
    rows: list[Row] = []
    greedy: dict[str, list[str]] = {}
    for setting in ("plain", "ngram"):
        model = ServedModel(alias="bench", path=str(embedded_model_path()), ctx_tokens=CTX, n_gpu_layers=0,
                            n_threads=-1, slots=SLOTS, flash_attn=True, ngram=setting == "ngram")
        spec = llamacpp_spec(f"bench-{setting}", (model,), free_port(18950), env={"CUDA_VISIBLE_DEVICES": ""},
                             server_binary=binary)
        with tempfile.TemporaryDirectory() as state, Supervisor(Path(state)).running([spec]):
            _ask(spec.base_url, "Say hi.", 0.0, 1, 4)  # warm-up
            for at_once in (1, SLOTS):
                row, answers = _level(spec, setting, prompts, at_once, ns.max_tokens)
                rows.append(row)
                if at_once == 1:
                    greedy[setting] = answers
                print(f"{setting:6} {at_once} at once: {row.tokens_per_s:5.1f} tokens/s", flush=True)
    base = {r.at_once: r.tokens_per_s for r in rows if r.setting == "plain"}
    print(f"\nembedded model, {len(prompts)} dev tasks' attempt prompts, up to {ns.max_tokens} tokens each, "
          f"{SLOTS} slots; 1 at once greedy, {SLOTS} at once sampled (3 seeds a task)")
    print(f"{'setting':8} {'at once':>7} {'tokens':>7} {'accepted':>9} {'wall s':>7} {'tokens/s':>9} {'vs plain':>8}")
    for r in rows:
        print(f"{r.setting:8} {r.at_once:7} {r.tokens:7} {r.accepted:9} {r.wall_s:7.1f} {r.tokens_per_s:9.1f} "
              f"{r.tokens_per_s / base[r.at_once]:8.2f}")
    same = sum(a == b for a, b in zip(greedy["plain"], greedy["ngram"], strict=True))
    print(f"greedy answers the same with and without drafting: {same} of {len(prompts)}")
    if ns.json:
        ns.json.write_text(json.dumps([r.__dict__ | {"tokens_per_s": r.tokens_per_s} for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
