"""The Ollama backend against a local server that follows Ollama's documented API (tests/fake_ollama.py).

No real Ollama is available here: these tests pin down the launch spec exactly and check every client-side
operation (pull, warm-up, residency) against the documented wire format, including its errors.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from crew.errors import ModelError, ServingError, SettingsError
from crew.serving import ollama as ob
from crew.serving.ollama_residency import Residency, normalize_tag, residency_problems
from crew.serving.process import free_port, port_is_free, stop
from crew.serving.spec import LaunchSpec, ServedModel
from crew.units import GIB
from tests.fake_ollama import FakeOllama

FAKE = Path(__file__).with_name("fake_ollama.py")
CODER, SMALL = "qwen2.5-coder:7b", "llama3.2:3b"


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama(default_ctx=8192)
    server.add_model(CODER, 4 * GIB)
    with server:
        yield server


def quiet_progress() -> Progress:
    return Progress(console=Console(file=io.StringIO()), auto_refresh=False)


def spec_for(server: FakeOllama, *tags: str, gpu: str | None = "GPU-aaaa",
             simulated: bool = False) -> LaunchSpec:
    models = tuple(ServedModel(alias=t, path="", ctx_tokens=8192) for t in tags)
    return ob.ollama_spec(f"gpu-{server.port}", models, server.port, gpu_uuid=gpu, num_parallel=2,
                          kv_type="q8_0", flash_attn=True, models_dir=None, simulated=simulated)


# ------------------------------------------------------------------------------------------ launch spec


def test_serve_argv_and_env_exactly() -> None:
    models = tuple(ServedModel(tag, "", 8192) for tag in (CODER, SMALL, "Llama3.2:3B"))
    spec = ob.ollama_spec("gpu1", models, 11501, gpu_uuid="GPU-5a1c", num_parallel=2, kv_type="q8_0",
                          flash_attn=True, models_dir="/data/ollama-models")
    assert spec.argv == ("ollama", "serve")
    assert dict(spec.env) == {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "GPU-5a1c",
        "OLLAMA_HOST": "127.0.0.1:11501",
        "OLLAMA_CONTEXT_LENGTH": "8192",
        "OLLAMA_NUM_PARALLEL": "2",
        "OLLAMA_MAX_LOADED_MODELS": "2",          # llama3.2:3b and Llama3.2:3B are one model
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_NOPRUNE": "1",
        "OLLAMA_MODELS": "/data/ollama-models",
    }
    assert (spec.backend, spec.port, spec.bind_address, spec.base_url) == ("ollama", 11501, "127.0.0.1",
                                                                  "http://127.0.0.1:11501")
    assert (spec.gpu_uuids, spec.simulated, spec.log_name) == (("GPU-5a1c",), False, "gpu1.log")
    assert spec.shell_command().endswith(" OLLAMA_NUM_PARALLEL=2 ollama serve")


def test_cpu_and_simulated_servers_hide_every_gpu() -> None:
    m = (ServedModel(SMALL, "", 4096),)
    cpu = ob.ollama_spec("cpu", m, 11510, gpu_uuid=None, num_parallel=1, kv_type="f16", flash_attn=False,
                         models_dir=None, ollama_bin="/opt/ollama/bin/ollama")
    assert cpu.argv == ("/opt/ollama/bin/ollama", "serve")
    assert cpu.env["CUDA_VISIBLE_DEVICES"] == "-1" and cpu.env["OLLAMA_FLASH_ATTENTION"] == "0"
    assert "OLLAMA_MODELS" not in cpu.env and cpu.gpu_uuids == ()       # the user's own store is inherited
    sim = ob.ollama_spec("gpu0", m, 11511, gpu_uuid="GPU-0", num_parallel=1, kv_type="f16", flash_attn=False,
                         models_dir=None, simulated=True)
    assert sim.env["CUDA_VISIBLE_DEVICES"] == "-1" and sim.simulated
    assert sim.planned_pinning == "GPU-0" and sim.gpu_uuids == ()


def test_settings_ollama_cannot_honour_are_refused() -> None:
    def spec(models: tuple[ServedModel, ...], kv_type: str, flash_attn: bool) -> LaunchSpec:
        return ob.ollama_spec("gpu0", models, 11500, gpu_uuid="GPU-1", num_parallel=1, kv_type=kv_type,
                              flash_attn=flash_attn, models_dir=None)

    two_ctx = (ServedModel(CODER, "", 8192), ServedModel(SMALL, "", 4096))
    with pytest.raises(SettingsError, match="one context length per server"):
        spec(two_ctx, "f16", True)
    with pytest.raises(SettingsError, match="needs flash attention"):
        spec(two_ctx[:1], "q4_0", False)
    with pytest.raises(SettingsError, match="unknown KV cache type"):
        spec(two_ctx[:1], "q5_1", True)


def test_another_port_moves_ollama_host() -> None:
    spec = ob.ollama_spec("gpu0", (ServedModel(SMALL, "", 4096),), 11500, gpu_uuid="GPU-1", num_parallel=1,
                          kv_type="f16", flash_attn=False, models_dir=None)
    moved = replace(spec, port=11533)
    assert moved.env["OLLAMA_HOST"] == "127.0.0.1:11533" and moved.argv == spec.argv
    assert moved.base_url == "http://127.0.0.1:11533"


def test_compatible_only_with_the_same_pinning() -> None:
    spec = ob.ollama_spec("gpu0", (ServedModel(SMALL, "", 4096),), 11500, gpu_uuid="GPU-1", num_parallel=1,
                          kv_type="f16", flash_attn=False, models_dir=None)
    assert ob.compatible(spec, dict(spec.env)) is None
    other = {**spec.env, "CUDA_VISIBLE_DEVICES": "GPU-2"}
    reason = ob.compatible(spec, other)
    assert reason is not None and "CUDA_VISIBLE_DEVICES='GPU-2' there, 'GPU-1' planned" in reason
    extra = ob.compatible(spec, {**spec.env, "OLLAMA_MODELS": "/elsewhere"})
    assert extra is not None and "OLLAMA_MODELS='/elsewhere' there, None planned" in extra
    unknown = ob.compatible(spec, None)
    assert unknown is not None and "did not start" in unknown


# ---------------------------------------------------------------------------------------- the process


def fake_binary(tmp_path: Path) -> str:
    exe = tmp_path / "bin" / "ollama"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ServingError) as err:
        ob.require_binary("ollama", which=lambda _: None)
    assert "https://ollama.com/download" in str(err.value) and "backend: llamacpp" in str(err.value)
    spec = ob.ollama_spec("gpu0", (ServedModel(SMALL, "", 4096),), free_port(18600), gpu_uuid="GPU-1",
                          num_parallel=1, kv_type="f16", flash_attn=False, models_dir=None,
                          ollama_bin=str(tmp_path / "nowhere" / "ollama"))
    with pytest.raises(ServingError, match="no Ollama executable at"):
        ob.start_server(spec, tmp_path / "state")


def test_the_process_gets_exactly_the_planned_environment(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    dump = tmp_path / "env.json"
    monkeypatch.setenv("FAKE_OLLAMA_ENV_DUMP", str(dump))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")        # the user's own value must not leak through
    spec = ob.ollama_spec("gpu0", (ServedModel(SMALL, "", 4096),), free_port(18610), gpu_uuid="GPU-77",
                          num_parallel=3, kv_type="q8_0", flash_attn=True, models_dir=str(tmp_path / "store"),
                          ollama_bin=fake_binary(tmp_path))
    server = ob.start_server(spec, tmp_path / "state", timeout_s=20)
    try:
        assert ob.version(spec.base_url) == "0.12.6"
        received = json.loads(dump.read_text())
        assert {k: received.get(k) for k in spec.env} == dict(spec.env)
    finally:
        stop(server)
    assert port_is_free(spec.port)


def test_a_server_that_never_answers_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OLLAMA_HANG", "1")
    spec = ob.ollama_spec("gpu0", (ServedModel(SMALL, "", 4096),), free_port(18620), gpu_uuid="GPU-1",
                          num_parallel=1, kv_type="f16", flash_attn=False, models_dir=None,
                          ollama_bin=fake_binary(tmp_path))
    with pytest.raises(ServingError, match="not healthy within 1 s") as err:
        ob.start_server(spec, tmp_path / "state", timeout_s=1.0)
    assert "GPU driver" in str(err.value)


def test_something_else_on_the_port_is_not_ollama() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        with pytest.raises(ServingError, match="no Ollama answers"):
            ob.version(f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()


# ----------------------------------------------------------------------------------------------- pull


def test_pull_missing_tags_with_a_bar_per_layer(fake: FakeOllama) -> None:
    fake.add_to_library(SMALL, 2_000_000, 1_500)
    progress = quiet_progress()
    pulled = ob.ensure_pulled(fake.base_url, ["Qwen2.5-Coder:7B", SMALL, "Llama3.2:3B"], progress=progress)
    assert pulled == [SMALL]
    assert [b["model"] for b in fake.bodies("/api/pull")] == [SMALL]        # the present one is not pulled
    bars = {t.description: (t.completed, t.total) for t in progress.tasks}
    assert sorted(bars.values()) == [(1_500, 1_500), (2_000_000, 2_000_000)]
    assert all(d.startswith(f"{SMALL} ") and len(d.split()[1]) == 12 for d in bars)
    assert SMALL in ob.installed_tags(fake.base_url)
    assert ob.ensure_pulled(fake.base_url, [SMALL], progress=None) == []


def test_unknown_tag_is_one_clear_line(fake: FakeOllama) -> None:
    with pytest.raises(ModelError) as err:
        ob.ensure_pulled(fake.base_url, ["qwen9-coder:7b"], progress=quiet_progress())
    text = str(err.value)
    assert "qwen9-coder:7b" in text and "https://ollama.com/library" in text and "\n" not in text


def test_offline_pull_names_the_tag_and_what_is_present(fake: FakeOllama) -> None:
    fake.offline = True
    with pytest.raises(ServingError) as err:
        ob.ensure_pulled(fake.base_url, [SMALL], progress=None)
    text = str(err.value)
    assert "'llama3.2:3b'" in text and "offline" in text and CODER in text and "\n" not in text


def test_a_pull_refused_before_streaming(fake: FakeOllama) -> None:
    fake.pull_error = (500, "mkdir /models/blobs: permission denied")
    with pytest.raises(ServingError, match="permission denied"):
        ob.ensure_pulled(fake.base_url, [SMALL], progress=None)


def test_no_server_at_all() -> None:
    with pytest.raises(ServingError, match="cannot be reached"):
        ob.ensure_pulled(f"http://127.0.0.1:{free_port(18630)}", [SMALL], progress=None)


@pytest.mark.parametrize(("message", "kind"), [
    ("pull model manifest: file does not exist", "unknown"),
    ('pull model manifest: Get "https://registry.ollama.ai/v2/library/x/manifests/y": dial tcp: lookup '
     "registry.ollama.ai: no such host", "offline"),
    ("max retries exceeded: Get ...: net/http: TLS handshake timeout", "offline"),
    ("mkdir /models/blobs: permission denied", "other"),
])
def test_pull_errors_are_classified(message: str, kind: str) -> None:
    assert ob.classify_pull_error(message) == kind


# ------------------------------------------------------------------------------------------- warm-up


def test_warm_up_loads_for_good_at_the_planned_context(fake: FakeOllama) -> None:
    ob.warm_up(fake.base_url, CODER, 8192)
    (body,) = fake.bodies("/api/generate")
    assert body["model"] == CODER and body["prompt"] == "" and body["keep_alive"] == -1
    assert body["options"] == {"num_ctx": 8192}
    (row,) = ob.residency(fake.base_url)
    assert (row.model, row.context_length) == (CODER, 8192)


def test_agents_requests_do_not_reload_a_warmed_model(fake: FakeOllama,
                                                      request: pytest.FixtureRequest) -> None:
    """Agents use /v1/chat/completions, which runs at the server's context: warm-up must use the same one."""
    from openai import NotFoundError, OpenAI

    ob.warm_up(fake.base_url, CODER, 8192)
    client = OpenAI(base_url=f"{fake.base_url}/v1", api_key="local", max_retries=0)
    request.addfinalizer(client.close)
    reply = client.chat.completions.create(model=CODER, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == fake.reply
    stream = client.chat.completions.create(model=CODER, messages=[{"role": "user", "content": "hi"}],
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream).strip() == fake.reply
    assert fake.loads == [(CODER, 8192)]
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="absent:1b", messages=[{"role": "user", "content": "hi"}])
    ob.warm_up(fake.base_url, CODER, 2048)                       # a different context is a reload
    assert fake.loads == [(CODER, 8192), (CODER, 2048)]


def test_native_chat_and_generate_follow_the_api(fake: FakeOllama, request: pytest.FixtureRequest) -> None:
    import ollama

    client = ollama.Client(host=fake.base_url, trust_env=False)
    request.addfinalizer(client.close)
    chat = client.chat(model=CODER, messages=[{"role": "user", "content": "hi"}])
    assert chat.message.content == fake.reply and chat.done_reason == "stop"
    parts = list(client.generate(model=CODER, prompt="hi", stream=True))
    assert parts[-1].done and "".join(p.response or "" for p in parts).strip() == fake.reply
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="absent:1b", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404
    with pytest.raises(ollama.ResponseError, match="missing unit"):
        client.generate(model=CODER, keep_alive="-1")           # why warm-up sends a number


def test_warm_up_errors(fake: FakeOllama) -> None:
    with pytest.raises(ModelError, match="not in the server's model store"):
        ob.warm_up(fake.base_url, "absent:1b", 4096)
    fake.load_errors[CODER] = (500, "model requires more system memory (9.1 GiB) than is available (7.5 GiB)")
    with pytest.raises(ServingError, match="more system memory") as err:
        ob.warm_up(fake.base_url, CODER, 8192)
    assert "q8_0" in str(err.value)


def test_servers_warm_up_in_parallel_with_progress() -> None:
    barrier = threading.Barrier(2)     # each load waits for the other server's: sequential loads would fail
    with FakeOllama(load_barrier=barrier) as a, FakeOllama(load_barrier=barrier) as b:
        a.add_model(CODER, 4 * GIB)
        b.add_model(SMALL, 2 * GIB)
        progress = quiet_progress()
        specs = [spec_for(a, CODER), spec_for(b, SMALL)]
        took = ob.warm_up_all(specs, progress=progress)
    assert set(took) == {(specs[0].server_id, CODER), (specs[1].server_id, SMALL)}
    assert all(t.finished and "loaded in" in t.description for t in progress.tasks)
    assert a.loads == [(CODER, 8192)] and b.loads == [(SMALL, 8192)]


# ------------------------------------------------------------------------------------------ residency


def test_fully_resident_models_pass(fake: FakeOllama) -> None:
    fake.add_model(SMALL, 2 * GIB)
    spec = spec_for(fake, CODER, SMALL)
    ob.warm_up_all([spec], progress=None)
    assert ob.check_residency(spec) == []


def test_a_spill_fails_with_the_numbers_and_the_fix(fake: FakeOllama) -> None:
    fake.spill[CODER] = 3 * GIB // 2
    spec = spec_for(fake, CODER)
    ob.warm_up(fake.base_url, CODER, 8192)
    with pytest.raises(ServingError) as err:
        ob.check_residency(spec, on_spill="fail")
    text = str(err.value)
    assert "1.50 GiB of its 4.01 GiB (37 %) is in system RAM, only 2.51 GiB on the GPU" in text
    assert all(word in text for word in ("smaller quant", "num_ctx", "q8_0", "on_spill: warn"))
    (line,) = ob.check_residency(spec, on_spill="warn")
    assert line.startswith(f"{CODER} on {spec.server_id}: 1.50 GiB") and "fix:" in line


def test_an_evicted_model_is_reported(fake: FakeOllama) -> None:
    fake.add_model(SMALL, 2 * GIB)
    fake.max_loaded_models = 1        # what Ollama does when the second model does not fit beside the first
    spec = spec_for(fake, CODER, SMALL)
    ob.warm_up_all([spec], progress=None)
    (line,) = ob.check_residency(spec, on_spill="warn")
    assert line.startswith(f"{CODER} on {spec.server_id}: is not loaded")


def test_cpu_servers_are_not_checked(fake: FakeOllama) -> None:
    fake.set_loaded(CODER, size=4 * GIB, size_vram=0)
    assert ob.check_residency(spec_for(fake, CODER, gpu=None)) == []
    assert ob.check_residency(spec_for(fake, CODER, simulated=True)) == []


def test_prepare_pulls_loads_and_checks(fake: FakeOllama) -> None:
    fake.add_to_library(SMALL, 2 * GIB, 1_000)
    fake.spill[SMALL] = GIB
    warnings = ob.prepare_servers([spec_for(fake, CODER, SMALL)], progress=quiet_progress(), on_spill="warn")
    assert [b["model"] for b in fake.bodies("/api/pull")] == [SMALL]
    assert len(warnings) == 1 and warnings[0].startswith(f"{SMALL} on gpu-{fake.port}: 1.00 GiB")


def test_residency_rows_and_problems_are_pure() -> None:
    assert Residency("m", 10, 10).spilled_bytes == 0 and Residency("m", 10, 4).spilled_bytes == 6
    assert Residency("m", 10, 12).spilled_bytes == 0
    assert normalize_tag("Registry.Ollama.AI/library/Llama3") == "llama3:latest"
    assert normalize_tag("hf.co/bartowski/Qwen:Q4_K_M") == "hf.co/bartowski/qwen:q4_k_m"
    assert normalize_tag("myname/model") == "myname/model:latest"
    rows = [Residency("llama3:latest", 0, 0), Residency("qwen:7b", 8 * GIB, 6 * GIB)]
    problems = residency_problems(rows, ["llama3", "qwen:7b", "phi3:mini"])
    assert [(p.model, p.what.split(" ")[0]) for p in problems] == [("qwen:7b", "2.00"), ("phi3:mini", "is")]
