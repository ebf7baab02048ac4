"""llama.cpp's own server as the llama.cpp backend (issue 25): the spec, the slots the planner counts, and a real
llama-server on loopback answering requests at once, its KV and compute buffers against the estimate.

The real-server tests need the binary set-up builds (crew/models/server_binary.py); they are skipped, and say
so, where it was not built. The suite's other tests run with LOCALCREW_LLAMA_SERVER=none (conftest), so that
their figures do not depend on whether it was.
"""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from crew.models.embedded import embedded_model_path
from crew.models.gguf import read_gguf
from crew.models.server_binary import BuildPlan, cmake_args, find_server_binary
from crew.planner.measured import parse_buffer_log
from crew.planner.vram import RunSettings, estimate
from crew.serving.process import Supervisor, free_port
from crew.serving.spec import LLAMA_SERVER, LOOPBACK, ServedModel, llamacpp_spec

BINARY = find_server_binary(environ={})
needs_binary = pytest.mark.skipif(BINARY is None, reason="no llama-server built (bash scripts/setup.sh sync)")


def _model(path: str = "/m.gguf", **kw: object) -> ServedModel:
    return ServedModel(alias="m", path=path, ctx_tokens=4096, **kw)  # type: ignore[arg-type]


def _after(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_llama_server_argv_carries_the_plan() -> None:
    spec = llamacpp_spec("gpu0", (_model(slots=3, kv_type="q8_0", flash_attn=True),), 11500,
                         server_binary="/bin/llama-server")
    argv = spec.argv
    assert spec.engine == LLAMA_SERVER and argv[0] == "/bin/llama-server" and spec.slots == 3
    assert _after(argv, "--host") == LOOPBACK and _after(argv, "--port") == "11500"
    # without the unified pool llama.cpp splits -c evenly: each slot gets the model's whole context
    assert _after(argv, "--parallel") == "3" and _after(argv, "--ctx-size") == str(3 * 4096)
    assert "--no-kv-unified" in argv and _after(argv, "--fit") == "off" and "--metrics" in argv
    assert _after(argv, "--cache-type-k") == "q8_0" and _after(argv, "--flash-attn") == "on"


def test_the_port_is_carried_and_argv_rendered_from_it() -> None:
    spec = llamacpp_spec("gpu0", (_model(slots=2),), 11500, server_binary="/bin/llama-server")
    moved = replace(spec, port=11507)
    assert _after(moved.argv, "--port") == "11507" and moved.base_url.endswith(":11507")
    py = llamacpp_spec("cpu", (_model(), replace(_model(), alias="n")), 11500)
    assert json.loads(replace(py, port=11509).config_json or "{}")["port"] == 11509


def test_python_server_gets_one_slot_whatever_the_plan_says() -> None:
    spec = llamacpp_spec("cpu", (_model(slots=4),), 11500)
    assert spec.slots == 1 and "--parallel" not in spec.argv


def test_build_key_changes_with_the_flags(tmp_path: Path) -> None:
    a = BuildPlan(tmp_path, "0.3.36", cmake_args("", "-DGGML_AVX2=ON"), tmp_path)
    b = BuildPlan(tmp_path, "0.3.36", cmake_args("-DGGML_CUDA=on", "-DGGML_AVX2=ON"), tmp_path)
    assert a.key != b.key and a.key.startswith("0.3.36-")
    # what a server build needs comes last: CMAKE_ARGS written for the library (tools off) cannot undo it
    args = cmake_args("-DLLAMA_BUILD_SERVER=OFF", "")
    assert args.index("-DLLAMA_BUILD_SERVER=ON") > args.index("-DLLAMA_BUILD_SERVER=OFF")


def test_find_server_binary_honours_the_override(tmp_path: Path) -> None:
    assert find_server_binary({"LOCALCREW_LLAMA_SERVER": "none"}) is None
    assert find_server_binary({"LOCALCREW_LLAMA_SERVER": "/opt/llama-server"}) == "/opt/llama-server"
    assert find_server_binary({}, prefix=str(tmp_path)) is None


# ------------------------------------------------------------------------------------------- real servers

def _complete(base_url: str, prompt: str, tokens: int = 16) -> dict[str, object]:
    body = {"prompt": prompt, "max_tokens": tokens, "temperature": 0, "seed": 7}
    req = urllib.request.Request(base_url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


@needs_binary
@pytest.mark.slow
def test_slots_decode_together_and_match_the_estimate(tmp_path: Path) -> None:
    path = embedded_model_path()
    fp = read_gguf(path)
    for slots in (1, 3):
        model = ServedModel(alias="m", path=str(path), ctx_tokens=1024, n_gpu_layers=0, n_threads=-1,
                            slots=slots, batch=512, ubatch=512)
        spec = llamacpp_spec(f"cpu{slots}", (model,), free_port(18700), env={"CUDA_VISIBLE_DEVICES": ""},
                             server_binary=BINARY)
        state = tmp_path / str(slots)
        state.mkdir()
        with Supervisor(state).running([spec]):
            prompts = [f"def add_{i}(a, b):" for i in range(slots)]
            url = spec.base_url
            with ThreadPoolExecutor(slots) as pool:
                replies = list(pool.map(lambda p, url=url: _complete(url, p), prompts))
            metrics = urllib.request.urlopen(spec.base_url + "/metrics", timeout=10).read().decode()
        assert all(r["choices"] for r in replies)  # type: ignore[index]
        assert "llamacpp:" in metrics  # --metrics is on
        log = (state / spec.log_name).read_text(errors="replace")
        assert f"n_slots = {slots}" in log or f"n_parallel = {slots}" in log or slots == 1
        measured = parse_buffer_log(log)
        est = estimate(fp, RunSettings(ctx_tokens=1024, parallel=slots, device="cpu", kv_type="f16",
                                       flash_attn=False, batch=512, ubatch=512, outputs_per_slot=1))
        for name, e, m in (("kv", est.kv_cache_bytes, measured.kv_cache_bytes),
                           ("compute", est.compute_bytes, measured.compute_bytes)):
            assert abs(e - m) <= max(0.01 * m, 8 * 2**20), f"{slots} slot(s) {name}: estimate {e} vs log {m}"


@needs_binary
@pytest.mark.slow
def test_same_seed_same_answer_alone_or_beside_others(tmp_path: Path) -> None:
    """Seeds stay per request: a greedy request answers the same whether it decodes alone or in a batch."""
    model = ServedModel(alias="m", path=str(embedded_model_path()), ctx_tokens=1024, n_gpu_layers=0,
                        n_threads=-1, slots=3)
    spec = llamacpp_spec("cpu", (model,), free_port(18720), env={"CUDA_VISIBLE_DEVICES": ""}, server_binary=BINARY)
    with Supervisor(tmp_path).running([spec]):
        alone = _complete(spec.base_url, "def fibonacci(n):", 24)
        time.sleep(0.1)
        with ThreadPoolExecutor(3) as pool:
            batch = list(pool.map(lambda p: _complete(spec.base_url, p, 24),
                                  ["def fibonacci(n):", "class Stack:", "def is_prime(n):"]))
    text = lambda r: r["choices"][0]["text"]  # type: ignore[index]  # noqa: E731
    assert text(alone) == text(batch[0])


@needs_binary
@pytest.mark.slow
def test_a_stream_hung_up_on_stops_decoding(tmp_path: Path) -> None:
    """What a runaway answer's cut relies on (crew/answers/runaway.py): once the client closes a stream,
    llama-server stops decoding it — the tokens it predicted stay far below the request's limit."""
    model = ServedModel(alias="m", path=str(embedded_model_path()), ctx_tokens=2048, n_gpu_layers=0,
                        n_threads=-1, slots=1)
    spec = llamacpp_spec("cpu", (model,), free_port(18740), env={"CUDA_VISIBLE_DEVICES": ""}, server_binary=BINARY)
    body = {"model": "m", "messages": [{"role": "user", "content": "Count from 1 to 5000, one number a line."}],
            "max_tokens": 1500, "temperature": 0, "stream": True}
    with Supervisor(tmp_path).running([spec]):
        req = urllib.request.Request(spec.base_url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            for _ in range(8):
                resp.readline()
        predicted, processing = 0.0, 1.0
        for _ in range(100):  # the slot is released once the server's next write fails
            metrics = urllib.request.urlopen(spec.base_url + "/metrics", timeout=10).read().decode()
            values = {ln.split()[0]: float(ln.split()[1]) for ln in metrics.splitlines()
                      if ln.startswith("llamacpp:") and len(ln.split()) == 2}
            predicted, processing = values.get("llamacpp:tokens_predicted_total", 0.0), \
                values.get("llamacpp:requests_processing", 1.0)
            if processing == 0:
                break
            time.sleep(0.1)
        after = _complete(spec.base_url, "def add(a, b):", 8)  # the slot answers the next request
    assert processing == 0 and predicted < 200
    assert after["choices"]


# ------------------------------------------------------------------------------------------- the plan

def test_the_plan_counts_slots_and_a_draft_model(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With llama-server, an agent's slots each get a KV cache in the plan, and a draft model's weights and KV
    sit beside its target; the launch spec carries both. CPU plan, embedded model for every agent."""
    import yaml

    from crew.config import load_project
    from crew.planner.build import plan_project
    from crew.serving.launch import launch_specs

    monkeypatch.setenv("LOCALCREW_LLAMA_SERVER", "/opt/llama-server")  # a path: planned for, never started
    agents = yaml.safe_load((project_dir / "agents.yaml").read_text())
    agents["developer"]["slots"] = 3
    (project_dir / "agents.yaml").write_text(yaml.safe_dump(agents))
    one = plan_project(load_project(project_dir))
    dev = next(a for a in one.agents if a.name == "developer")
    tester = next(a for a in one.agents if a.name == "tester")
    assert dev.slots == 3 and tester.slots == 1
    # same model and context per slot: three slots hold three times one slot's KV cache
    per_token = tester.estimate.kv_cache_bytes / tester.num_ctx
    assert dev.estimate.kv_cache_bytes == pytest.approx(3 * per_token * dev.num_ctx, rel=0.01)
    spec = launch_specs(one, load_project(project_dir).layout, server_binary="/opt/llama-server")[0]
    assert spec.slots == sum(a.slots for a in one.agents) == 6 and "--parallel" in spec.argv

    agents["developer"]["draft_model"] = "embedded-tiny"
    (project_dir / "agents.yaml").write_text(yaml.safe_dump(agents))
    drafted = plan_project(load_project(project_dir))
    dev2 = next(a for a in drafted.agents if a.name == "developer")
    assert dev2.draft_path and dev2.draft_path.endswith(".gguf")
    spec2 = launch_specs(drafted, load_project(project_dir).layout, server_binary="/opt/llama-server")[0]
    assert _after(spec2.argv, "--model-draft") == dev2.draft_path
    assert spec2.planned_bytes > spec.planned_bytes  # the draft's weights and KV are counted


def test_without_llama_server_every_agent_gets_one_slot(project_dir: Path) -> None:
    from crew.config import load_project
    from crew.planner.build import plan_project

    plan = plan_project(load_project(project_dir))  # conftest: LOCALCREW_LLAMA_SERVER=none
    assert all(a.slots == 1 for a in plan.agents)
    assert any("one request at a time per server" in n for n in plan.notes)
