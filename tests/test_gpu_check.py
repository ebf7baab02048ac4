"""The CUDA check (benchmarks/gpu_check): everything up to the CUDA build, on the CPU.

The synthetic GGUFs are loaded by the project's CPU llama.cpp, the log parser reads real CPU lines and the
CUDA format, the bundle is packed from the real vendored source and configured with CMake, and the whole
run goes through its `--cpu` dry mode, on Python 3.12 with only the bundle's packages too.
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

from benchmarks.gpu_check import build, prepare, run, shapes, synth
from benchmarks.gpu_check.case import CaseSpec, run_case
from benchmarks.gpu_check.compare import make_row, table_markdown
from benchmarks.gpu_check.logparse import load_buffers
from crew.models.catalog import lookup
from crew.models.gguf import read_gguf
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


# ------------------------------------------------------------------------------------------ the time budget

def test_a_budget_that_runs_short_skips_the_biggest_cases_and_says_so() -> None:
    by_name = {s.name: s for s in shapes.gpu_shapes()}
    specs = run.case_plan(shapes.gpu_shapes(), run.GPU_CONTEXTS, gpu=True, n_gen=8, threads=1)
    assert [(s.model, s.ctx_tokens) for s in specs][-1] == ("14B", 32768)  # the last one to run
    assert run.expected_case_s(by_name["8B"], {}, by_name) == 60.0
    guess = run.expected_case_s(by_name["14B"], {"1B": 15.0}, by_name)
    assert guess == pytest.approx(5.0 + 10.0 * shapes.file_bytes(by_name["14B"]) / shapes.file_bytes(by_name["1B"]))


def test_dry_run_with_no_time_left_writes_a_report_of_skips(tmp_path: Path) -> None:
    rc = run.main(["--cpu", "--budget-s", "30", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")])
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert rc == 1 and report["rows"] == [] and len(report["skipped"]) == 4
    assert all("time budget" in s["reason"] for s in report["skipped"])
    assert "skipped tiny ctx 512 q8_0: time budget" in (tmp_path / "out/gpu_check.md").read_text()


def test_a_run_that_cannot_start_still_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Here there is no NVIDIA driver: the CUDA run stops at its first phase, and says why in both files."""
    rc = run.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")])
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert rc == 1 and report["rows"] == [] and report["notes"][0].startswith("stopped: RuntimeError: no GPU")
    assert "stopped: RuntimeError: no GPU" in (tmp_path / "out/gpu_check.md").read_text()
    assert "Traceback" in capsys.readouterr().err


def test_dry_run_end_to_end(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "cpu", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert len(report["rows"]) == 4 and not report["skipped"] and set(report["phases_s"]) == {"gguf", "loads"}
    for r in report["rows"]:
        assert r["weights_error_bytes"] == pytest.approx(0, abs=0.05 * MIB)  # the log's two decimals
        assert r["kv_error_bytes"] == pytest.approx(0, abs=0.05 * MIB)
        assert r["decode_tokens_per_s"] > 0 and r["roofline_tokens_per_s"] > 0
    assert "[gpu_check] loads:" in proc.stdout and (tmp_path / "logs/tiny-512-q8_0.log").exists()
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


def test_cmake_builds_only_libllama_for_one_architecture(tmp_path: Path) -> None:
    args = build.cmake_args(tmp_path / "src", tmp_path / "b", "90-real")
    assert "-DGGML_CUDA=ON" in args and "-DCMAKE_CUDA_ARCHITECTURES=90-real" in args
    assert "-DLLAMA_BUILD_TOOLS=OFF" in args and "-DGGML_CUDA_NCCL=OFF" in args
    assert build.ninja_args(tmp_path / "b", 16)[-3:] == ["-j", "16", "llama"]
    assert build.cuda_architecture("12.0") == "120-real"
    with pytest.raises(ValueError):
        build.cuda_architecture("sm_90")


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
    ("ggml/src/ggml-quants.c", True), ("vendor/nlohmann/json.hpp", True), ("vendor/cpp-httplib/httplib.h", False),
    ("models/ggml-vocab-llama-bpe.gguf", False), ("tools/llama-bench/llama-bench.cpp", False),
    ("common/common.cpp", False), ("src/.git/HEAD", False),
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
    assert not any(n.startswith(("ggml/src/ggml-vulkan/", "tools/", "models/", "docs/")) for n in names)
    assert tarball.stat().st_size < 8 * MIB
    assert len(prepare.llama_commit(SDIST)) == 40


@pytest.mark.slow
@pytest.mark.skipif(SDIST is None or shutil.which("cmake") is None or shutil.which("ninja") is None,
                    reason="needs the sdist, cmake and ninja")
def test_the_trimmed_tree_configures(tmp_path: Path) -> None:
    """CMake accepts the trimmed tree (CPU backend: this machine has no cuBLAS; the CUDA configure is the
    device's first step and fails there in seconds, with its log, if something is missing)."""
    assert SDIST is not None
    prepare.pack_tree(SDIST / "vendor/llama.cpp", tmp_path / "l.tar.gz", "llama.cpp", prepare.keep)
    src = build.unpack(tmp_path / "l.tar.gz", tmp_path / "src", "c0ffee")
    args = [a for a in build.cmake_args(src, tmp_path / "b", "90-real") if "CUDA" not in a]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "b/build.ninja").exists()


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
    proc = subprocess.run([py, "-s", "-m", "benchmarks.gpu_check.run", "--cpu", "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LLAMA_CPP_LIB_PATH": str(lib),
                               "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "PYTHONNOUSERSITE": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(json.loads((tmp_path / "out/gpu_check.json").read_text())["rows"]) == 4
