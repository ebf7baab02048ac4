"""The estimator as pure arithmetic: hand-computed terms, settings llama.cpp refuses, device splits."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from crew.errors import SettingsError
from crew.models.catalog import catalog_footprint
from crew.models.footprint import ModelFootprint
from crew.planner.vram import CUDA_OVERHEAD_BYTES, RunSettings, decode_tokens_per_s, estimate

MIB = 1 << 20


def fp(**kw: object) -> ModelFootprint:
    """An 8B-llama-shaped footprint with round numbers; override what a test needs."""
    base = dict(name="t", source="gguf", architecture="llama", quant="Q4_K_M", n_layer=32, n_embd=4096,
                n_head=32, n_head_kv=8, head_dim=128, n_vocab=128256, n_ctx_train=8192,
                weights_bytes=32 * 100 * MIB + 500 * MIB + 400 * MIB, n_ff=14336,
                layer_weights_bytes=(100 * MIB,) * 32, token_embd_bytes=500 * MIB, token_embd_type="Q4_K",
                output_bytes=400 * MIB)
    base.update(kw)
    return ModelFootprint(**base)  # type: ignore[arg-type]


def test_kv_cache_is_two_by_layers_by_cells_by_kv_width() -> None:
    est = estimate(fp(), RunSettings(ctx_tokens=4096, device="cpu"))
    assert est.kv_cache_bytes == 2 * 32 * 4096 * 8 * 128 * 2 == 512 * MIB
    q8 = estimate(fp(), RunSettings(ctx_tokens=4096, kv_type="q8_0", device="cpu"))
    q4 = estimate(fp(), RunSettings(ctx_tokens=4096, kv_type="q4_0", device="cpu"))
    assert q8.kv_cache_bytes == 512 * MIB * 34 // 64 and q4.kv_cache_bytes == 512 * MIB * 18 // 64


def test_context_is_padded_per_slot_and_multiplied_by_slots() -> None:
    est = estimate(fp(), RunSettings(ctx_tokens=1000, parallel=3, device="cpu"))
    assert est.kv_cells == 1024 * 3
    assert est.kv_cache_bytes == 2 * 32 * 3072 * 1024 * 2
    assert est.output_bytes == 128256 * 4 * 3  # one row of logits per sequence


def test_micro_batch_is_capped_by_context() -> None:
    assert estimate(fp(), RunSettings(ctx_tokens=256, ubatch=512, device="cpu")).n_ubatch == 256
    assert estimate(fp(), RunSettings(ctx_tokens=4096, batch=128, ubatch=512, device="cpu")).n_ubatch == 128


def test_compute_buffer_logits_dominate_with_flash_attention() -> None:
    est = estimate(fp(), RunSettings(ctx_tokens=8192, device="cpu"))
    assert est.compute_bytes == (128256 + 2 * 4096) * 512 * 4
    # without flash attention the KQ scores of all heads (n_kv x n_ubatch x n_head f32) take over
    no_fa = estimate(fp(), RunSettings(ctx_tokens=8192, flash_attn=False, device="cpu"))
    assert no_fa.compute_bytes > 8192 * 512 * 32 * 4


def test_total_is_the_sum_of_its_parts() -> None:
    for s in (RunSettings(device="cpu"), RunSettings(), RunSettings(n_gpu_layers=10)):
        e = estimate(fp(), s)
        assert e.total_bytes == (e.weights_bytes + e.kv_cache_bytes + e.compute_bytes + e.output_bytes
                                 + e.overhead_bytes)


def test_cuda_keeps_token_embeddings_and_output_buffer_on_the_host() -> None:
    cpu, gpu = estimate(fp(), RunSettings(device="cpu")), estimate(fp(), RunSettings(device="cuda"))
    assert gpu.weights_bytes == cpu.weights_bytes - 500 * MIB
    assert gpu.output_bytes == 0 and gpu.overhead_bytes == CUDA_OVERHEAD_BYTES and cpu.overhead_bytes == 0
    assert gpu.host_bytes == 500 * MIB + cpu.output_bytes
    tied = fp(output_bytes=0, weights_bytes=32 * 100 * MIB + 500 * MIB)
    assert estimate(tied, RunSettings()).weights_bytes == tied.weights_bytes  # the head is a GPU copy


def test_tied_head_of_a_repacked_type_is_copied_on_cpu() -> None:
    tied = fp(output_bytes=0, weights_bytes=32 * 100 * MIB + 500 * MIB)
    assert estimate(tied, RunSettings(device="cpu")).weights_bytes == tied.weights_bytes + 500 * MIB
    plain = replace(tied, token_embd_type="Q6_K")
    assert estimate(plain, RunSettings(device="cpu")).weights_bytes == plain.weights_bytes


def test_partial_offload_puts_the_last_layers_on_the_gpu() -> None:
    est = estimate(fp(), RunSettings(n_gpu_layers=8))
    assert est.weights_bytes == 8 * 100 * MIB
    assert est.kv_cache_bytes == 512 * MIB * 8 // 32
    assert estimate(fp(), RunSettings(n_gpu_layers=0)).weights_bytes == 0


def test_sliding_window_layers_keep_window_plus_ubatch_cells() -> None:
    swa = fp(architecture="gemma3", sliding_window=1024, swa_layers=tuple(i % 6 < 5 for i in range(32)))
    est = estimate(swa, RunSettings(ctx_tokens=8192, device="cpu"))
    n_global = sum(1 for i in range(32) if i % 6 == 5)
    per_cell = 2 * 8 * 128 * 2
    assert est.kv_cache_bytes == per_cell * (n_global * 8192 + (32 - n_global) * 1536)
    full = estimate(swa, RunSettings(ctx_tokens=8192, device="cpu", swa_full=True))
    assert full.kv_cache_bytes == per_cell * 32 * 8192


def test_mla_caches_no_values() -> None:
    mla = fp(mla=True, n_head_kv=1, head_dim=576, head_dim_v=512)
    assert estimate(mla, RunSettings(ctx_tokens=4096, device="cpu")).kv_cache_bytes == 32 * 4096 * 576 * 2


@pytest.mark.parametrize("settings, message", [
    (RunSettings(kv_type="q8_0", flash_attn=False), "needs flash attention"),
    (RunSettings(kv_type="q4_0", flash_attn=False), "needs flash attention"),
    (RunSettings(kv_type="q5_1"), "unknown KV cache type"),
    (RunSettings(ctx_tokens=16384), "exceeds the 8192 tokens"),
    (RunSettings(parallel=0), "parallel must be at least 1"),
    (RunSettings(ubatch=0), "ubatch must be at least 1"),
    (RunSettings(device="tpu"), "unknown device"),
    (RunSettings(n_gpu_layers=-1), "n_gpu_layers"),
])
def test_impossible_settings(settings: RunSettings, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        estimate(fp(), settings)


def test_context_beyond_training_when_allowed() -> None:
    est = estimate(fp(), RunSettings(ctx_tokens=16384, allow_ctx_over_train=True, device="cpu"))
    assert est.kv_cells == 16384


def test_decode_roofline() -> None:
    s = RunSettings(ctx_tokens=4096)
    tps = decode_tokens_per_s(fp(), s, 936e9)
    per_token = fp().weights_bytes - 500 * MIB + 512 * MIB * 0.5
    assert tps == pytest.approx(936e9 / per_token)
    assert decode_tokens_per_s(fp(), s, 2 * 936e9) == pytest.approx(2 * tps)
    assert decode_tokens_per_s(fp(), s, 936e9, kv_fill=1.0) < tps
    with pytest.raises(SettingsError):
        decode_tokens_per_s(fp(), s, 0)


def test_moe_decode_reads_only_the_experts_in_use() -> None:
    mixtral = catalog_footprint("mixtral:8x7b")
    dense_equivalent = replace(mixtral, n_expert=0, n_expert_used=0, expert_weights_bytes=0)
    s = RunSettings(ctx_tokens=4096)
    assert decode_tokens_per_s(mixtral, s, 936e9) > 3 * decode_tokens_per_s(dense_equivalent, s, 936e9)


def test_known_cuda_compute_buffer_of_llama3_8b() -> None:
    """llama.cpp logs `CUDA0 compute buffer size = 258.50 MiB` for Llama 3 8B at 512-token micro-batches
    with flash attention: the logits (128256 x 512 f32) plus one row of activations. Not measured here
    (no GPU in this session); the number is the one llama.cpp users report."""
    est = estimate(catalog_footprint("llama3:8b"), RunSettings(ctx_tokens=8192))
    assert est.compute_bytes == pytest.approx(258.5 * MIB, rel=0.01)


def test_vram_module_imports_no_io_or_heavy_modules() -> None:
    heavy = ("gguf", "numpy", "llama_cpp", "crewai", "yaml", "rich")
    code = f"import sys, crew.planner.vram; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
