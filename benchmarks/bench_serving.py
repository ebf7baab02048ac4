"""One server, several requests at once: llama-server's slots vs llama-cpp-python's server, side by side.

For each engine, one server of the embedded model (same context per request, same threads) is started
through the crew's own path (LaunchSpec → Supervisor), then sent 1, 2, 4 and 8 identical requests at once
(streamed; end of sequence banned so each decodes exactly --tokens tokens). Per level: aggregate generated
tokens/s (all requests' tokens over the wall time from the first send to the last token), the median
time to first token, and the ratio to the same engine with one request. Both engines run in one process,
one after the other, so the ratios come from one run. Run it alone on the machine.

    uv run python benchmarks/bench_serving.py [--tokens 128] [--levels 1,2,4,8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.models.embedded import embedded_model_path  # noqa: E402
from crew.models.server_binary import find_server_binary  # noqa: E402
from crew.serving.process import Supervisor, free_port  # noqa: E402
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec  # noqa: E402

PROMPT = ("You are a Python developer. Write a module with a function `merge_intervals(intervals)` that merges "
          "overlapping closed intervals and returns them sorted, with a docstring, type hints and a few "
          "pytest tests. Explain each step of the algorithm in comments.")
CTX = 2048


@dataclass(frozen=True)
class Level:
    engine: str
    at_once: int
    tokens: int
    wall_s: float
    first_token_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


def _one(base_url: str, tokens: int, eos_ids: tuple[int, ...], t0: float,
         prompt: str | list[int] = PROMPT) -> tuple[int, float, float]:
    """(tokens generated, seconds to the first token, seconds to the end), streamed. `prompt` may be token ids
    (llama-server takes them; benchmarks/gpu_check's synthetic models have no tokenizer for text)."""
    body = {"model": "bench", "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
            "logit_bias": {str(t): -100.0 for t in eos_ids}}
    req = urllib.request.Request(base_url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    first, n = 0.0, 0
    with urllib.request.urlopen(req, timeout=600) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            text = "".join(c.get("text", "") for c in chunk.get("choices", []))
            if text:
                n += 1
                first = first or time.perf_counter() - t0
    return n, first, time.perf_counter() - t0


def _level(spec: LaunchSpec, engine: str, at_once: int, tokens: int, eos_ids: tuple[int, ...],
           prompt: str | list[int] = PROMPT) -> Level:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        done = list(pool.map(lambda _: _one(spec.base_url, tokens, eos_ids, t0, prompt), range(at_once)))
    return Level(engine, at_once, sum(d[0] for d in done), max(d[2] for d in done),
                 statistics.median(d[1] for d in done))


def _spec(engine: str, path: str, slots: int, threads: int, binary: str | None) -> LaunchSpec:
    model = ServedModel(alias="bench", path=path, ctx_tokens=CTX, n_gpu_layers=0, n_threads=threads, slots=slots)
    return llamacpp_spec(f"bench-{engine}", (model,), free_port(18900), env={"CUDA_VISIBLE_DEVICES": ""},
                         server_binary=binary if engine == "llama-server" else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--repeats", type=int, default=2, help="runs per level; the best wall time is kept")
    ap.add_argument("--threads", type=int, default=-1, help="decode threads (-1: every core)")
    ap.add_argument("--eos-ids", default="151643,151645", help="tokens banned so every request decodes "
                    "--tokens tokens (the embedded Qwen2.5's <|endoftext|> and <|im_end|>)")
    ap.add_argument("--json", type=Path, help="also write the table here")
    ns = ap.parse_args()
    levels = [int(x) for x in ns.levels.split(",")]
    eos = tuple(int(x) for x in ns.eos_ids.split(","))
    binary = find_server_binary()
    if binary is None:
        print("no llama-server built (bash scripts/setup.sh sync builds it)", file=sys.stderr)
        return 2
    path = str(embedded_model_path())
    rows: list[Level] = []
    for engine in ("llama-server", "llama-cpp-python"):
        spec = _spec(engine, path, max(levels), ns.threads, binary)
        with tempfile.TemporaryDirectory() as state, Supervisor(Path(state)).running([spec]):
            _level(spec, engine, 1, 8, eos)  # warm-up: load pages, fill caches
            for n in levels:
                runs = [_level(spec, engine, n, ns.tokens, eos) for _ in range(ns.repeats)]
                rows.append(min(runs, key=lambda r: r.wall_s))
                print(f"{engine:17} {n} at once: {rows[-1].tokens_per_s:6.1f} tokens/s", flush=True)
    base = {r.engine: r.tokens_per_s for r in rows if r.at_once == levels[0]}
    py = {r.at_once: r.tokens_per_s for r in rows if r.engine == "llama-cpp-python"}
    print(f"\nembedded model, {ns.tokens} tokens per request, context {CTX} per request, threads {ns.threads}")
    print(f"{'engine':17} {'at once':>7} {'tokens/s':>9} {'vs 1':>6} {'vs python':>9} {'first token':>11}")
    for r in rows:
        print(f"{r.engine:17} {r.at_once:7} {r.tokens_per_s:9.1f} {r.tokens_per_s / base[r.engine]:6.2f} "
              f"{r.tokens_per_s / py[r.at_once]:9.2f} {r.first_token_s:10.2f}s")
    if ns.json:
        ns.json.write_text(json.dumps([r.__dict__ | {"tokens_per_s": r.tokens_per_s} for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
