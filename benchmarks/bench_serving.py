"""Serving benchmarks, measured side by side in one run (embedded model, this machine's CPU):

1. decode tokens/s through the crew's server path (HTTP to our llama.cpp server on loopback) vs
   llama-cpp-python called directly, same model and settings → the ratio;
2. time from start to all servers healthy: one server vs two (simulated GPUs: same pinning env as real ones);
3. decode tokens/s per agent when two agents generate at once: each on its own pinned server vs both
   sharing one server (requests queue) → the ratio.

    uv run python benchmarks/bench_serving.py [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.models.embedded import embedded_model_path  # noqa: E402
from crew.serving.process import Supervisor, free_port, http_json  # noqa: E402
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec  # noqa: E402

PROMPT = "Write a Python function that returns the n-th Fibonacci number, with a docstring and tests."
EOS = 2  # SmolLM2's <|im_end|>/EOS; banned so every run decodes exactly --tokens tokens
NO_EOS = {str(EOS): -100.0}
CTX = 2048


def _server_tps(base_url: str, tokens: int) -> float:
    started = time.perf_counter()
    reply = http_json(base_url + "/v1/completions", timeout_s=300, payload={
        "model": "bench", "prompt": PROMPT, "max_tokens": tokens, "temperature": 0, "logit_bias": NO_EOS})
    elapsed = time.perf_counter() - started
    assert isinstance(reply, dict)
    return int(reply["usage"]["completion_tokens"]) / elapsed


def _direct_tps(llm: object, tokens: int) -> float:
    started = time.perf_counter()
    out = llm(PROMPT, max_tokens=tokens, temperature=0, logit_bias={EOS: -100.0})  # type: ignore[operator]
    return int(out["usage"]["completion_tokens"]) / (time.perf_counter() - started)


def _specs(n: int, path: str, threads: int) -> list[LaunchSpec]:
    specs, taken = [], set()
    for i in range(n):
        port = free_port(18900, taken=taken)
        taken.add(port)
        model = ServedModel(alias="bench", path=path, ctx_tokens=CTX)
        spec = llamacpp_spec(f"gpu{i}", (model,), port, env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                                                              "CUDA_VISIBLE_DEVICES": f"GPU-sim-{i}"}, simulated=True)
        specs.append(spec.__class__(**{**spec.__dict__, "argv": (*spec.argv, "--n_threads", str(threads))}))
    return specs


def _two_agents(urls: list[str], tokens: int) -> list[float]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda u: _server_tps(u, tokens), urls))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    # The serving path is measured, not the model: embedded-tiny, whose EOS id (2) is the one banned above.
    path = str(embedded_model_path("embedded-tiny"))
    from llama_cpp import Llama

    direct = Llama(model_path=path, n_ctx=CTX, n_batch=512, n_ubatch=512, verbose=False)
    direct_tps = statistics.median(_direct_tps(direct, args.tokens) for _ in range(args.repeats))
    del direct

    with tempfile.TemporaryDirectory() as tmp:
        ready = {}
        for n in (1, 2):
            sup = Supervisor(Path(tmp) / f"n{n}")
            t0 = time.perf_counter()
            with sup.running(_specs(n, path, threads=1 if n == 2 else 2)):
                ready[n] = time.perf_counter() - t0
                urls = [s.spec.base_url for s in sup.servers.values()]
                if n == 1:
                    server_tps = statistics.median(_server_tps(urls[0], args.tokens) for _ in range(args.repeats))
                    shared = [statistics.median(x) for x in zip(*(_two_agents([urls[0]] * 2, args.tokens)
                                                                  for _ in range(args.repeats)), strict=True)]
                else:
                    pinned = [statistics.median(x) for x in zip(*(_two_agents(urls, args.tokens)
                                                                  for _ in range(args.repeats)), strict=True)]

    print(f"model {Path(path).name}, ctx {CTX}, {args.tokens} tokens, median of {args.repeats}; CPU only here")
    print(f"1. direct llama-cpp-python        {direct_tps:8.1f} tok/s")
    ratio = server_tps / direct_tps
    print(f"   crew server path (HTTP)        {server_tps:8.1f} tok/s   ratio server/direct {ratio:.3f}")
    print(f"2. start → healthy, 1 server      {ready[1]:8.2f} s")
    print(f"   start → healthy, 2 servers     {ready[2]:8.2f} s   ratio {ready[2] / ready[1]:.2f}")
    print(f"3. two agents at once, shared     {shared[0]:8.1f} / {shared[1]:.1f} tok/s per agent")
    print(f"   two agents at once, pinned     {pinned[0]:8.1f} / {pinned[1]:.1f} tok/s per agent "
          f"(1 thread each on 2 cores)   ratio {sum(pinned) / sum(shared):.2f}")


if __name__ == "__main__":
    main()
