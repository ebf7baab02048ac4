"""The CUDA check (benchmarks/gpu_check): everything up to the CUDA build, on the CPU.

The synthetic GGUFs are loaded by the project's CPU llama.cpp, the log parser reads real CPU lines and the
CUDA format, the bundle is packed from the real vendored source and configured with CMake (llama-server
included), and the whole run goes through its `--cpu` dry mode — set-up's CPU llama-server standing in for
the CUDA one in the slots case — on Python 3.12 with only the bundle's packages too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.gpu_check import build, prepare, run, shapes, slots, synth
from benchmarks.gpu_check.case import CaseSpec, run_case
from benchmarks.gpu_check.compare import make_row, table_markdown
from benchmarks.gpu_check.logparse import load_buffers
from crew.models.catalog import lookup
from crew.models.gguf import read_gguf
from crew.models.server_binary import find_server_binary
from tests.conftest import ROOT
from tests.layouts import FakeGpu, FakeNvml

MIB = 1024**2
GIB = 1024**3
CUDA_LOG = """load_tensors: offloaded 33/33 layers to GPU
load_tensors:        CUDA0 model buffer size =  4403.49 MiB
load_tensors:          CPU model buffer size =   281.81 MiB
llama_kv_cache:      CUDA0 KV buffer size =   512.00 MiB
llama_context:  CUDA_Host  output buffer size =     0.49 MiB
sched_reserve:      CUDA0 compute buffer size =   258.50 MiB
sched_reserve:  CUDA_Host compute buffer size =    16.01 MiB
"""
# llama-server at --log-verbosity 4 on a GPU: timestamps, the same buffer lines, then serving.
SERVER_LOG = """0.00.512.001 I load_tensors: offloaded 17/17 layers to GPU
0.00.512.010 I load_tensors:        CUDA0 model buffer size =   762.81 MiB
0.00.512.020 I load_tensors:          CPU model buffer size =   250.50 MiB
0.00.700.100 I llama_context:  CUDA_Host  output buffer size =     1.96 MiB
0.00.700.200 I llama_kv_cache:      CUDA0 KV buffer size =   272.00 MiB
0.00.800.300 I sched_reserve:      CUDA0 compute buffer size =   254.50 MiB
0.00.800.310 I sched_reserve:  CUDA_Host compute buffer size =    40.02 MiB
0.00.900.000 I srv  llama_server: model loaded
0.00.900.100 I srv  llama_server: listening on http://127.0.0.1:18840
0.05.000.000 I llama_kv_cache:      CUDA0 KV buffer size =  9999.00 MiB
"""
SERVER_BINARY = find_server_binary(environ={})  # set-up's CPU build, whatever conftest's override says


# ------------------------------------------------------------------------------------------ shapes and files

def test_block_sizes_are_ggmls() -> None:
    import gguf

    for name, (per_block, block_bytes) in shapes.BLOCKS.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]] == (per_block, block_bytes)


@pytest.mark.parametrize(("tag", "name"), [("llama3.1:8b", "8B"), ("qwen2.5-coder:14b", "14B")])
def test_q4_k_m_layout_matches_the_published_file_size(tag: str, name: str) -> None:
    shape = next(s for s in shapes.gpu_shapes() if s.name == name)
    published = lookup(tag)
    assert published is not None and published.quant == "q4_K_M"
    assert abs(shapes.file_bytes(shape) - published.file_bytes) / published.file_bytes < 0.01


def test_1b_layout_matches_the_published_file_size() -> None:
    # Llama-3.2-1B-Instruct-Q4_K_M.gguf is 0.81 GB (bartowski); tied head, so token_embd is Q6_K
    assert abs(shapes.file_bytes(shapes.LLAMA_3_2_1B) - 0.808e9) / 0.808e9 < 0.02
    types = {t.name: t.ggml_type for t in shapes.tensors(shapes.LLAMA_3_2_1B)}
    assert types["token_embd.weight"] == "Q6_K" and "output.weight" not in types


def test_more_bits_go_where_llama_quant_puts_them() -> None:
    more = [i for i in range(32) if shapes.use_more_bits(i, 32)]
    assert more[:4] == [0, 1, 2, 3] and more[-4:] == [28, 29, 30, 31] and 6 in more and 5 not in more


@pytest.mark.parametrize("shape", [shapes.TINY, shapes.TINY_QWEN], ids=lambda s: s.name)
def test_synthetic_gguf_reads_back_and_loads_in_llama_cpp(tmp_path: Path, shape: shapes.ModelShape) -> None:
    path = synth.write_gguf(tmp_path / "m.gguf", shape)
    fp = read_gguf(path)
    assert (fp.n_layer, fp.n_embd, fp.n_head_kv, fp.n_vocab) == (shape.n_layer, shape.n_embd, shape.n_head_kv,
                                                                 shape.n_vocab)
    assert fp.weights_bytes == shapes.file_bytes(shape) and fp.quant == "Q4_K_M"
    assert fp.tied_embeddings == shape.tied_embeddings
    result = run_case(CaseSpec(model=shape.name, path=str(path), ctx_tokens=256, kv_type="q8_0", gpu=False,
                               n_gen=4), None)
    assert load_buffers(result.log).device.model_bytes > 0
    assert result.decode_tokens == 4 and result.decode_s > 0 and 0.4 < result.kv_fill <= 0.6


def test_random_blocks_have_finite_small_scales() -> None:
    for name, offsets in synth.SCALE_OFFSETS.items():
        blocks = synth.random_pool(name).reshape(-1, shapes.BLOCKS[name][1])
        for off in offsets:
            scales = blocks[:, off:off + 2].copy().view(np.float16).astype(np.float32)
            assert np.isfinite(scales).all() and (scales > 0).all() and (scales < 0.01).all()
        assert len(np.unique(blocks[:, blocks.shape[1] // 2])) > 100  # the quants themselves are random


def test_a_row_that_is_not_whole_blocks_is_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="not whole Q4_K blocks"):
        synth.write_gguf(tmp_path / "m.gguf", replace(shapes.TINY, n_embd=320))


# ------------------------------------------------------------------------------------------ the log parser

def test_cuda_log_splits_gpu_from_host() -> None:
    b = load_buffers(CUDA_LOG)
    assert b.on_gpu
    assert abs(b.device.model_bytes - 4403.49 * MIB) < 0.01 * MIB
    assert b.device.kv_cache_bytes == 512 * MIB and abs(b.device.compute_bytes - 258.50 * MIB) < 0.01 * MIB
    assert abs(b.host_bytes - (281.81 + 0.49 + 16.01) * MIB) < 0.02 * MIB  # CUDA_Host is host memory


def test_cpu_log_is_all_device(tmp_path: Path) -> None:
    path = synth.write_gguf(tmp_path / "m.gguf", shapes.TINY)
    log = run_case(CaseSpec(model="tiny", path=str(path), ctx_tokens=512, kv_type="f16", gpu=False, n_gen=2),
                   None).log
    b = load_buffers(log)
    assert not b.on_gpu and b.host_bytes == 0
    assert b.device.kv_cache_bytes == 2 * 512 * shapes.TINY.kv_dim * 2 * shapes.TINY.n_layer  # K and V, f16


# ------------------------------------------------------------------------------------------ NVML and the rows

class GrowingMemory:
    """A MemoryProbe whose used memory grows by 1 GiB, then 100 MiB, per reading (load, then decode)."""

    def __init__(self) -> None:
        self.readings = [10 * GIB, 11 * GIB, 11 * GIB + 100 * MIB]

    def open(self) -> None:
        pass

    def memory(self, index: int) -> tuple[int, int, int]:
        used = self.readings.pop(0)
        return 141 * GIB, 141 * GIB - used, used


def test_nvml_readings_frame_the_load_and_the_decode(tmp_path: Path) -> None:
    path = synth.write_gguf(tmp_path / "m.gguf", shapes.TINY)
    spec = CaseSpec(model="tiny", path=str(path), ctx_tokens=256, kv_type="f16", gpu=False, n_gen=2)
    result = run_case(spec, GrowingMemory())
    assert (result.nvml_used_before_bytes, result.nvml_used_loaded_bytes, result.nvml_used_after_bytes) == (
        10 * GIB, 11 * GIB, 11 * GIB + 100 * MIB)
    est = run.plan_gpus_estimate(path, spec, "cuda", 4800.0)
    row = make_row(spec, result, load_buffers(CUDA_LOG), est)
    assert row.nvml_delta_bytes == GIB + 100 * MIB
    assert row.overhead_bytes == row.nvml_delta_bytes - load_buffers(CUDA_LOG).device.total_bytes
    assert row.total_error_bytes == est["total_bytes"] - row.nvml_delta_bytes
    assert row.roofline_ratio == pytest.approx(row.decode_tokens_per_s / est["decode_tokens_per_s"])
    table = table_markdown([row], device_label="CUDA0")
    assert "llama.cpp CUDA0 buffers MiB" in table and f"| {row.nvml_delta_bytes // MIB} |" in table


def test_the_estimate_is_plan_gpus_own(tmp_path: Path) -> None:
    path = synth.write_gguf(tmp_path / "m.gguf", shapes.TINY)
    spec = CaseSpec(model="tiny", path=str(path), ctx_tokens=1024, kv_type="q8_0", gpu=True)
    est = run.plan_gpus_estimate(path, spec, "cuda", 1000.0)
    out = subprocess.run([sys.executable, "-m", "crew.cli", "estimate", str(path), "--device", "cuda", "--ctx",
                          "1024", "--kv-type", "q8_0", "--json", "--bandwidth-gbs", "1000"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    cli = json.loads(out)
    for key in ("total_bytes", "weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes"):
        assert est[key] == cli[key]
    assert est["overhead_bytes"] > 0  # the CUDA context the check measures


def test_a_plan_gpus_error_is_reported_not_swallowed(tmp_path: Path) -> None:
    spec = CaseSpec(model="tiny", path="", ctx_tokens=1024, kv_type="q8_0", gpu=True)
    with pytest.raises(RuntimeError, match="exited 2"):
        run.plan_gpus_estimate(tmp_path / "missing.gguf", spec, "cuda", 1000.0)


def test_gpu_facts_give_the_build_its_architecture() -> None:
    h200 = FakeGpu("NVIDIA H200", 141 * GIB, cc=(9, 0), bus_width_bits=6144, mem_clock_mhz=2619)
    gpu = run.gpu_facts(FakeNvml(gpus=[h200]))
    assert build.cuda_architecture(gpu["compute_capability"]) == "90-real"
    assert gpu["bandwidth_bytes_per_s"] == 6144 // 8 * 2619 * 2_000_000
    with pytest.raises(RuntimeError, match="no GPU"):
        run.gpu_facts(FakeNvml(gpus=[]))


# ------------------------------------------------------------------------------------------ llama-server slots

def _after(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_the_slots_server_gets_the_crews_own_argv() -> None:
    """The same command line crew/serving/launch.py gives an agent's server: N slots of the whole context each,
    every layer on the GPU, pinned by UUID, the layout's KV type, buffer sizes in the log."""
    from crew.serving.spec import llamacpp_spec

    spec = slots.SlotsSpec(model="1B", path="/m/1B.gguf", slots=4, ctx_tokens=4096, gpu=True, n_gen=128,
                           n_vocab=128256)
    ls = slots.launch_spec(spec, "/b/llama-server", 18841, "GPU-1234")
    argv = ls.argv
    assert argv[0] == "/b/llama-server" and ls.env == {"CUDA_VISIBLE_DEVICES": "GPU-1234"}
    assert _after(argv, "--host") == "127.0.0.1" and _after(argv, "--port") == "18841"
    assert _after(argv, "--parallel") == "4" and _after(argv, "--ctx-size") == "16384" and "--no-kv-unified" in argv
    assert _after(argv, "--n-gpu-layers") == "999" and _after(argv, "--flash-attn") == "on"
    assert _after(argv, "--cache-type-k") == "q8_0" and _after(argv, "--fit") == "off"
    assert _after(argv, "--log-verbosity") == "4" and "--threads" not in argv and "--load-mode" not in argv
    crew = llamacpp_spec("slots4", (slots.served_model(spec),), 18841, server_binary="/b/llama-server")
    assert crew.argv == argv
    s = slots.run_settings(spec)
    assert (s.parallel, s.ctx_tokens, s.outputs_per_slot, s.device, s.kv_type) == (4, 4096, 1, "cuda", "q8_0")
    cpu = slots.SlotsSpec(model="tiny", path="/m.gguf", slots=1, ctx_tokens=512, gpu=False, n_gen=16, n_vocab=1024)
    cpu_argv = slots.launch_spec(cpu, "/b/llama-server", 18842).argv
    assert _after(cpu_argv, "--n-gpu-layers") == "0" and _after(cpu_argv, "--threads") == "1"
    assert slots.launch_spec(cpu, "/b/llama-server", 18842).env == {"CUDA_VISIBLE_DEVICES": ""}
    assert all(3 <= t < 1024 for t in slots.prompt_tokens(1024))


def test_the_server_log_is_read_up_to_the_end_of_loading() -> None:
    from crew.planner.vram import VramEstimate

    log = slots.load_log(SERVER_LOG)
    assert "9999.00" not in log and "CUDA0 compute buffer size" in log
    b = load_buffers(log)
    assert b.on_gpu and b.device.kv_cache_bytes == 272 * MIB and b.device.compute_bytes == round(254.5 * MIB)
    assert b.host_bytes == round((250.50 + 1.96 + 40.02) * MIB)
    spec = slots.SlotsSpec(model="1B", path="/m/1B.gguf", slots=4, ctx_tokens=4096, gpu=True, n_gen=128,
                           n_vocab=128256)
    est = VramEstimate(weights_bytes=round(762.81 * MIB), kv_cache_bytes=272 * MIB, compute_bytes=300 * MIB,
                       output_bytes=0, overhead_bytes=400 * MIB, total_bytes=0)
    levels = (slots.SlotsLevel(1, 128, 0.5, 0.01), slots.SlotsLevel(4, 512, 0.8, 0.02))
    row = slots.make_row(spec, slots.SlotsResult(log=log, argv=(), start_s=3.0, levels=levels), b, est)
    assert [c.within_target for c in row.comparisons()] == [True, True, False]  # compute off by 18 %
    assert row.tokens_per_s(1) == 256.0 and row.tokens_per_s(4) == 640.0 and row.tokens_per_s(2) is None
    j = slots.row_json(row)
    assert j["errors_bytes"]["compute"] == 300 * MIB - round(254.5 * MIB) and j["levels"][1]["tokens_per_s"] == 640.0
    table = slots.table_markdown([row], device_label="CUDA0")
    assert "llama-server CUDA0 KV MiB" in table and "| 1B | 4 | 4096 | q8_0 | 272.0 | 272.0 |" in table
    assert "| no: compute | 256.0 | 640.0 | 3.0 |" in table


def _running_with(arg: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if arg.encode() in cmdline.read_bytes().split(b"\0"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


@pytest.mark.skipif(SERVER_BINARY is None, reason="no llama-server built (bash scripts/setup.sh sync)")
def test_a_server_past_the_budget_is_stopped_and_said_so(tmp_path: Path) -> None:
    path = synth.write_gguf(tmp_path / "m.gguf", shapes.TINY)
    spec = slots.SlotsSpec(model="tiny", path=str(path), slots=4, ctx_tokens=512, gpu=False, n_gen=16,
                           n_vocab=shapes.TINY.n_vocab)
    with pytest.raises(slots.OverBudget, match="end of its time budget"):
        slots.run_server(spec, str(SERVER_BINARY), tmp_path / "state", time.monotonic() + 0.05)
    assert _running_with(str(path)) == []


# ------------------------------------------------------------------------------------------ the time budget

def test_a_budget_that_runs_short_skips_the_biggest_cases_and_says_so() -> None:
    by_name = {s.name: s for s in shapes.gpu_shapes()}
    specs = run.case_plan(shapes.gpu_shapes(), run.GPU_CONTEXTS, gpu=True, n_gen=8, threads=1)
    assert [(s.model, s.ctx_tokens) for s in specs][-1] == ("14B", 32768)  # the last one to run
    assert run.expected_case_s(by_name["8B"], {}, by_name) == 60.0
    guess = run.expected_case_s(by_name["14B"], {"1B": 15.0}, by_name)
    assert guess == pytest.approx(5.0 + 10.0 * shapes.file_bytes(by_name["14B"]) / shapes.file_bytes(by_name["1B"]))


def test_dry_run_with_no_time_left_writes_a_report_of_skips(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALCREW_LLAMA_SERVER", "none")  # and no server: the slots case says so
    rc = run.main(["--cpu", "--budget-s", "30", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")])
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert rc == 1 and report["rows"] == [] and report["server_rows"] == [] and len(report["skipped"]) == 6
    assert all("time budget" in s["reason"] for s in report["skipped"][:4])
    assert all(s["reason"].startswith("no llama-server") for s in report["skipped"][4:])
    text = (tmp_path / "out/gpu_check.md").read_text()
    assert "skipped tiny ctx 512 q8_0: time budget" in text
    assert "skipped llama-server tiny 4 slot(s) ctx 512/slot q8_0: no llama-server" in text


def test_the_slots_case_is_skipped_when_the_budget_is_short(tmp_path: Path) -> None:
    spec = slots.SlotsSpec(model="tiny", path="/m.gguf", slots=4, ctx_tokens=512, gpu=True, n_gen=8, n_vocab=1024)
    clock = run.Clock(30.0)
    rows, skipped = run.run_slots([spec], "/no/such/llama-server", "", clock, tmp_path, tmp_path)
    assert rows == [] and skipped[0]["reason"].startswith("time budget") and "~45 s needed" in skipped[0]["reason"]


def test_a_run_that_cannot_start_still_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Here there is no NVIDIA driver: the CUDA run stops at its first phase, and says why in both files."""
    rc = run.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")])
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert rc == 1 and report["rows"] == [] and report["notes"][0].startswith("stopped: RuntimeError: no GPU")
    assert "stopped: RuntimeError: no GPU" in (tmp_path / "out/gpu_check.md").read_text()
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.skipif(SERVER_BINARY is None, reason="no llama-server built (bash scripts/setup.sh sync)")
def test_dry_run_end_to_end(tmp_path: Path) -> None:
    """The whole run on the CPU, the slots case through set-up's CPU llama-server (the override names it)."""
    started = time.monotonic()
    env = dict(os.environ, PYTHON=sys.executable, LOCALCREW_LLAMA_SERVER=str(SERVER_BINARY))
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "cpu", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert len(report["rows"]) == 4 and not report["skipped"]
    assert set(report["phases_s"]) == {"gguf", "loads", "server"}
    for r in report["rows"]:
        assert r["weights_error_bytes"] == pytest.approx(0, abs=0.05 * MIB)  # the log's two decimals
        assert r["kv_error_bytes"] == pytest.approx(0, abs=0.05 * MIB)
        assert r["decode_tokens_per_s"] > 0 and r["roofline_tokens_per_s"] > 0
    assert "[gpu_check] loads:" in proc.stdout and (tmp_path / "logs/tiny-512-q8_0.log").exists()
    assert [r["slots"] for r in report["server_rows"]] == list(slots.SLOT_COUNTS)
    for r in report["server_rows"]:
        assert all(r["within_target"].values()), r
        assert r["kv_bytes"] == pytest.approx(r["estimate_kv_bytes"], abs=0.05 * MIB)
        assert [lv["at_once"] for lv in r["levels"]] == sorted({1, r["slots"]})
        assert all(lv["tokens"] == lv["at_once"] * 16 and lv["tokens_per_s"] > 0 for lv in r["levels"])
    argv = (tmp_path / "logs/slots-4.log").read_text().splitlines()[0].split()
    assert argv[0] == str(SERVER_BINARY) and "--no-kv-unified" in argv
    assert argv[argv.index("--parallel") + 1] == "4" and argv[argv.index("--ctx-size") + 1] == str(4 * 512)
    assert "llama-server CPU KV MiB" in (tmp_path / "gpu_check.md").read_text()
    assert time.monotonic() - started < 60


# ------------------------------------------------------------------------------------------ the build

def test_the_source_is_unpacked_again_only_for_another_commit(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src/llama.cpp").write_text("original")
    prepare.pack_tree(tree, tmp_path / "l.tar.gz", "llama.cpp")
    root = build.unpack(tmp_path / "l.tar.gz", tmp_path / "dest", "commit-a")
    (root / "src/llama.cpp").write_text("built from")  # stands for the build's state that must survive
    assert (build.unpack(tmp_path / "l.tar.gz", tmp_path / "dest", "commit-a") / "src/llama.cpp").read_text() == (
        "built from")
    assert (build.unpack(tmp_path / "l.tar.gz", tmp_path / "dest", "commit-b") / "src/llama.cpp").read_text() == (
        "original")


def test_cmake_builds_libllama_and_the_server_for_one_architecture(tmp_path: Path) -> None:
    from crew.models.server_binary import cmake_args as server_cmake_args

    args = build.cmake_args(tmp_path / "src", tmp_path / "b", "90-real")
    assert "-DGGML_CUDA=ON" in args and "-DCMAKE_CUDA_ARCHITECTURES=90-real" in args and "-DGGML_CUDA_NCCL=OFF" in args
    # set-up's server configure (crew/models/server_binary.py), the CUDA flags in the user's place, then shared
    setup = list(server_cmake_args(" ".join(build.cuda_args("90-real")), build.PORTABLE_CPU_ARGS))
    assert args[7:-1] == setup and args[-1] == "-DBUILD_SHARED_LIBS=ON"
    assert "-DLLAMA_BUILD_SERVER=ON" in args and "-DLLAMA_BUILD_UI=OFF" in args and "-DGGML_NATIVE=OFF" in args
    assert build.ninja_args(tmp_path / "b", 16)[-6:] == ["-j", "16", "-k", "0", "llama", "llama-server"]
    assert build.cuda_architecture("12.0") == "120-real"
    with pytest.raises(ValueError):
        build.cuda_architecture("sm_90")


def test_the_portable_cpu_flags_are_setups() -> None:
    line = next(line for line in (ROOT / "scripts/setup.sh").read_text().splitlines()
                if line.startswith("portable_cpu_args="))
    assert line.split("=", 1)[1].strip('"') == build.PORTABLE_CPU_ARGS


NINJA_LOG = """[1/9] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o
FAILED: tools/server/CMakeFiles/server-context.dir/server-context.cpp.o
/usr/bin/c++ -O3 -c tools/server/server-context.cpp
tools/server/server-context.cpp:12:10: fatal error: nlohmann/json.hpp: No such file or directory
compilation terminated.
[9/9] Linking CXX shared library bin/libllama.so
ninja: build stopped: subcommand failed.
"""


def test_a_server_build_failure_is_one_line() -> None:
    assert build.first_error(NINJA_LOG) == ("tools/server/CMakeFiles/server-context.dir/server-context.cpp.o: "
                                            "tools/server/server-context.cpp:12:10: fatal error: nlohmann/json.hpp: "
                                            "No such file or directory")
    assert build.first_error("cmake: something broke\nCMake Error at x") == "CMake Error at x"
    long = "\n".join(f"line {i}" for i in range(100))
    tail = build.log_tail(NINJA_LOG.splitlines()[0] + "\n" + NINJA_LOG + long, lines=10)
    assert tail.startswith("FAILED:") and "[...]" in tail and tail.endswith("line 99")


def test_a_server_that_fails_to_build_leaves_the_library(tmp_path: Path) -> None:
    """ninja goes on past the server's error (-k 0): libllama is built and judged on its own."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "cmake").write_text("#!/bin/sh\necho configured\n")
    (fake / "ninja").write_text(f"""#!/bin/sh
case " $* " in
  *" -n llama "*) echo "ninja: no work to do."; exit 0 ;;
  *" -n "*) echo "[1/3] Building CXX object server-context.cpp.o"; exit 0 ;;
esac
mkdir -p {tmp_path}/b/bin && touch {tmp_path}/b/bin/libllama.so {tmp_path}/b/build.ninja
cat <<'EOF'
{NINJA_LOG}EOF
exit 1
""")
    for f in ("cmake", "ninja"):
        (fake / f).chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    b = build.Build(tmp_path / "src", tmp_path / "b", "90-real", 2, env=env)
    import unittest.mock

    with unittest.mock.patch.dict(os.environ, {"PATH": env["PATH"]}):  # up_to_date's dry run finds it too
        result = b.wait(time.monotonic() + 30)
    assert result.ok and result.lib_dir == tmp_path / "b/bin" and result.server is None
    assert result.server_reason.startswith("the llama-server build failed: tools/server/CMakeFiles/server-context")
    assert "\n" not in result.server_reason


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_a_failing_build_ends_with_its_log(tmp_path: Path) -> None:
    b = build.Build(tmp_path / "no-such-source", tmp_path / "b", "90-real", 1)
    result = b.wait(time.monotonic() + 60)
    assert not result.ok and "exit" in result.reason and "no-such-source" in result.log_tail


def test_a_build_past_its_deadline_is_stopped(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cmake").write_text("#!/bin/sh\nsleep 30\n")
    (fake / "cmake").chmod(0o755)
    b = build.Build(tmp_path / "src", tmp_path / "b", "90-real", 1,
                    env=dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}"))
    started = time.monotonic()
    result = b.wait(time.monotonic() + 1)
    assert not result.ok and "did not finish" in result.reason and time.monotonic() - started < 10


# ------------------------------------------------------------------------------------------ the bundle

@pytest.mark.parametrize(("rel", "kept"), [
    ("CMakeLists.txt", True), ("LICENSE", True), ("README.md", False), ("docs/build.md", False),
    ("ggml/src/ggml.c", True), ("ggml/src/ggml-cuda/mmq.cu", True), ("ggml/src/ggml-cpu/ggml-cpu.c", True),
    ("ggml/src/ggml-vulkan/ggml-vulkan.cpp", False), ("ggml/src/ggml-metal/CMakeLists.txt", False),
    ("ggml/src/ggml-quants.c", True), ("vendor/nlohmann/json.hpp", True), ("vendor/cpp-httplib/httplib.h", True),
    ("models/ggml-vocab-llama-bpe.gguf", False), ("src/.git/HEAD", False),
    # llama-server: common/, the tools' sources (tools/CMakeLists.txt adds every tool), the UI's templates only
    ("common/common.cpp", True), ("common/build-info.cpp.in", True), ("tools/CMakeLists.txt", True),
    ("tools/server/server-context.cpp", True), ("tools/server/README.md", False),
    ("tools/server/tests/unit/test_basic.py", False), ("tools/server/bench/bench.py", False),
    ("tools/llama-bench/llama-bench.cpp", True), ("tools/mtmd/clip.cpp", True), ("tools/mtmd/test-1.jpeg", False),
    ("tools/ui/CMakeLists.txt", True), ("tools/ui/ui.cpp.in", True), ("tools/ui/src/lib/App.svelte", False),
    ("tools/ui/package-lock.json", False), ("scripts/ui-assets.cmake", True), ("scripts/build-info.sh", False),
])
def test_the_trimmed_tree_keeps_what_the_build_reads(rel: str, kept: bool) -> None:
    assert prepare.keep(rel) is kept


def test_the_size_limit_is_enforced() -> None:
    assert prepare.Sizes({"a": 10 * MIB, "b": 20 * MIB}).problem() is None
    problem = prepare.Sizes({"site.tar.gz": 60 * MIB, "llama.cpp.tar.gz": 5 * MIB}).problem()
    assert problem is not None and "over 64 MiB" in problem and problem.index("site") < problem.index("llama")


def test_wheels_are_pinned_as_uv_lock_pins_them() -> None:
    lock = (ROOT / "uv.lock").read_text()
    pinned = dict(p.split("==") for p in prepare.pins(lock))
    assert set(pinned) == set(prepare.PACKAGES)
    from importlib.metadata import version  # the device writes with the gguf the estimator reads with here

    assert pinned["gguf"] == version("gguf") and pinned["numpy"] == version("numpy")
    with pytest.raises(KeyError, match="no-such-package"):
        prepare.pins(lock, ("numpy", "no-such-package"))


def _sdist() -> Path | None:
    from importlib.metadata import version

    try:
        return prepare.find_llama_sdist(version("llama-cpp-python"), [Path.home() / ".cache/uv"])
    except FileNotFoundError:
        return None


SDIST = _sdist()


@pytest.mark.skipif(SDIST is None, reason="no llama-cpp-python sdist in uv's cache")
def test_the_source_tarball_has_what_the_cuda_build_needs(tmp_path: Path) -> None:
    assert SDIST is not None
    tarball = tmp_path / "llama.cpp.tar.gz"
    prepare.pack_tree(SDIST / "vendor/llama.cpp", tarball, "llama.cpp", prepare.keep)
    with tarfile.open(tarball) as tf:
        names = {n.removeprefix("llama.cpp/") for n in tf.getnames()}
    assert set(prepare.REQUIRED) <= names
    assert any(n.startswith("ggml/src/ggml-cuda/template-instances/") for n in names)
    assert not any(n.startswith(("ggml/src/ggml-vulkan/", "tools/ui/src/", "tools/server/tests/", "models/", "docs/"))
                   for n in names)
    assert tarball.stat().st_size < 8 * MIB
    assert len(prepare.llama_commit(SDIST)) == 40


@pytest.mark.slow
@pytest.mark.skipif(SDIST is None or shutil.which("cmake") is None or shutil.which("ninja") is None,
                    reason="needs the sdist, cmake and ninja")
def test_the_trimmed_tree_configures(tmp_path: Path) -> None:
    """CMake accepts the trimmed tree (CPU backend: this machine has no cuBLAS; the CUDA configure is the
    device's first step and fails there in seconds, with its log, if something is missing), and every file
    `ninja llama llama-server` would compile or link is there (a dry run stops at a missing one)."""
    assert SDIST is not None
    prepare.pack_tree(SDIST / "vendor/llama.cpp", tmp_path / "l.tar.gz", "llama.cpp", prepare.keep)
    src = build.unpack(tmp_path / "l.tar.gz", tmp_path / "src", "c0ffee")
    args = [a for a in build.cmake_args(src, tmp_path / "b", "90-real") if "CUDA" not in a]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "b/build.ninja").exists()
    dry = subprocess.run(["ninja", "-C", str(tmp_path / "b"), "-n", *build.TARGETS], capture_output=True, text=True,
                         check=False)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    assert "Linking CXX executable bin/llama-server" in dry.stdout


def _python312() -> str | None:
    """A Python 3.12 that runs (a pyenv shim may name one that does not)."""
    for cand in (shutil.which("python3.12"), *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python"))):
        if cand and subprocess.run([cand, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"],
                                   capture_output=True, check=False).returncode == 0:
            return cand
    return None


@pytest.mark.slow
@pytest.mark.skipif(SDIST is None or _python312() is None, reason="needs the sdist and a Python 3.12")
def test_the_bundle_runs_on_python_312_with_nothing_else(tmp_path: Path) -> None:
    """prepare, then `gpu_check.sh run --cpu` on Python 3.12 whose only packages are the bundle's (the CPU
    library stands in for the CUDA build): what the device does, minus the build and NVML."""
    bundle = tmp_path / "bundle"
    subprocess.run([sys.executable, "-m", "benchmarks.gpu_check.prepare", "--bundle", str(bundle)], cwd=ROOT,
                   check=True, capture_output=True)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["bytes"]["total"] < prepare.LIMIT_BYTES
    site = tmp_path / "site"
    site.mkdir()
    with tarfile.open(bundle / "site.tar.gz") as tf:
        tf.extractall(site, filter="data")
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    py = _python312()
    assert py is not None
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run([py, "-s", "-m", "benchmarks.gpu_check.run", "--cpu", "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LLAMA_CPP_LIB_PATH": str(lib),
                               "TMPDIR": str(tmp_path / "tmp"),
                               "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "PYTHONNOUSERSITE": "1",
                               "LOCALCREW_LLAMA_SERVER": str(SERVER_BINARY or "none")})
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert len(report["rows"]) == 4
    assert not list((tmp_path / "tmp").glob("gpu_check-*"))  # the dry run's models are gone with it
    if SERVER_BINARY is not None:  # the slots case imports the crew's serving code with the bundle's packages
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert len(report["server_rows"]) == len(slots.SLOT_COUNTS)
