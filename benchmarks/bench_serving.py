"""Decode speed through the crew's server path vs llama-cpp-python called directly, same model, same run.

    uv run python benchmarks/bench_serving.py [--tokens 128] [--repeats 3]

Prints tokens/s for both paths and their ratio. The server path is what every agent uses: an HTTP request
to our llama.cpp server on 127.0.0.1 (OpenAI-compatible, non-streaming). Both decode the same prompt with
greedy sampling and the same context and batch settings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.models.embedded import embedded_model_path  # noqa: E402
from crew.serving.process import Supervisor, free_port, http_json  # noqa: E402
from crew.serving.spec import ServedModel, llamacpp_spec  # noqa: E402

PROMPT = "Write a Python function that returns the n-th Fibonacci number, with a docstring and tests."
CTX = 2048


def _server_tps(base_url: str, tokens: int) -> float:
    started = time.perf_counter()
    reply = http_json(base_url + "/v1/completions", timeout_s=300, payload={
        "model": "bench", "prompt": PROMPT, "max_tokens": tokens, "temperature": 0})
    elapsed = time.perf_counter() - started
    assert isinstance(reply, dict)
    return int(reply["usage"]["completion_tokens"]) / elapsed


def _direct_tps(llm: object, tokens: int) -> float:
    started = time.perf_counter()
    out = llm(PROMPT, max_tokens=tokens, temperature=0)  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    return int(out["usage"]["completion_tokens"]) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = str(embedded_model_path())

    from llama_cpp import Llama

    direct = Llama(model_path=path, n_ctx=CTX, n_batch=512, n_ubatch=512, verbose=False)
    direct_runs = [_direct_tps(direct, args.tokens) for _ in range(args.repeats)]
    del direct

    spec = llamacpp_spec("bench", (ServedModel(alias="bench", path=path, ctx_tokens=CTX),), free_port(18900))
    with tempfile.TemporaryDirectory() as tmp:
        sup = Supervisor(Path(tmp))
        t0 = time.perf_counter()
        with sup.running([spec]):
            ready_s = time.perf_counter() - t0
            server_runs = [_server_tps(spec.base_url, args.tokens) for _ in range(args.repeats)]

    d, s = statistics.median(direct_runs), statistics.median(server_runs)
    print(f"model: {Path(path).name}  ctx {CTX}  {args.tokens} tokens x {args.repeats} (median)")
    print(f"server start to healthy:            {ready_s:6.2f} s")
    print(f"llama-cpp-python direct:            {d:8.1f} tokens/s")
    print(f"crew server path (HTTP, loopback):  {s:8.1f} tokens/s")
    print(f"ratio server/direct:                {s / d:8.3f}")


if __name__ == "__main__":
    main()
