"""Memory of one model instance under llama.cpp, component by component. Pure: no IO, no llama.cpp.

Every formula follows the llama.cpp code that allocates the buffer (the vendored copy built with
llama-cpp-python 0.3.36); docs/estimator.md cites the lines and shows the measured error of each term.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from crew.errors import SettingsError
from crew.models.footprint import ModelFootprint
from crew.models.llamacpp import GPU_KV_TYPE as GPU_KV_TYPE  # re-exported: the planner's default
from crew.models.llamacpp import KV_TYPES as _GGML_KV_TYPES

MIB = 1024 * 1024
# Bytes per KV element as (bytes, elements) of one ggml block: f16 2 B / 1, q8_0 34 B / 32, q4_0 18 B / 32.
KV_TYPES: dict[str, tuple[int, int]] = {n: (t.block_bytes, t.block_elems) for n, t in _GGML_KV_TYPES.items()}
DEVICES = ("cpu", "cuda")
# CUDA context, cuBLAS handle and ggml-cuda's scratch pool, per process. Not measured this session (no GPU);
# the design note gives 250-500 MiB for consumer cards, and we keep to the high side of it.
CUDA_OVERHEAD_BYTES = 400 * MIB
_CTX_PAD = 256  # llama-context.cpp: cparams.n_ctx = GGML_PAD(n_ctx, 256), per sequence too
# Types the CPU backend repacks into its own buffer on AVX2 hosts (ggml-cpu/repack.cpp,
# ggml_repack_get_optimal_repack_type). A tied output head of such a type gets a repacked second copy,
# because token_embd itself must stay plain for get_rows.
CPU_REPACKED_TYPES = frozenset({"Q4_0", "Q4_K", "IQ4_NL", "MXFP4"})


# llama-server's default number of tokens a draft model proposes per step (common.h, speculative draft n_max):
# each is a logits row per slot on the target's side.
DRAFT_MAX_TOKENS = 3


@dataclass(frozen=True)
class RunSettings:
    """How one model instance is run. `ctx_tokens` is per parallel slot (Ollama's OLLAMA_CONTEXT_LENGTH)."""

    ctx_tokens: int = 4096
    parallel: int = 1
    kv_type: str = "f16"
    flash_attn: bool = True
    batch: int = 2048
    ubatch: int = 512
    device: str = "cuda"
    n_gpu_layers: int | None = None  # None: all layers and the output head, like llama.cpp's -ngl 999
    swa_full: bool = False           # llama-server's default; the C API's default is True
    allow_ctx_over_train: bool = False
    # Logits rows the graph is reserved for, per slot. 0: every token of a micro-batch (the C API's default,
    # llama-cpp-python); llama-server reserves one per slot (plus its draft tokens with speculative decoding:
    # server-context.cpp server_output_limits), which shrinks the output stage of the compute buffer.
    outputs_per_slot: int = 0


@dataclass(frozen=True)
class VramEstimate:
    """Bytes on the device (VRAM for cuda, RAM for cpu). `host_bytes` is what stays in system memory
    besides: the token embedding when offloading, pinned output and input buffers."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    output_bytes: int
    overhead_bytes: int
    total_bytes: int
    host_bytes: int = 0
    kv_cells: int = 0   # KV cache cells per full-attention layer, all slots together
    n_ubatch: int = 0   # the micro-batch llama.cpp really uses (capped by batch and context)


def estimate(fp: ModelFootprint, settings: RunSettings) -> VramEstimate:
    """Predict llama.cpp's buffers for `fp` run with `settings`; raise SettingsError for impossible ones."""
    _validate(fp, settings)
    s = settings
    n_ctx_seq = _pad(s.ctx_tokens)
    n_ctx = n_ctx_seq * s.parallel
    n_ubatch = min(s.ubatch, s.batch, n_ctx)  # llama-context.cpp: n_batch = min(n_ctx, n_batch)
    gpu_layers = _gpu_layers(fp, s)

    kv_all = [_kv_layer_bytes(fp, s, il, n_ctx_seq, n_ubatch) for il in range(fp.n_layer)]
    output_buf = fp.n_vocab * 4 * s.parallel  # llama-context.cpp output_reserve: n_vocab floats per sequence
    compute = compute_buffer_bytes(fp, s, n_ctx_seq, n_ubatch)
    if s.device == "cpu":
        weights, kv, host = fp.weights_bytes, sum(kv_all), 0
        if fp.tied_embeddings and fp.token_embd_type in CPU_REPACKED_TYPES:
            weights += fp.token_embd_bytes
        overhead, output = 0, output_buf
    else:
        on_gpu = range(fp.n_layer - min(gpu_layers, fp.n_layer), fp.n_layer)  # llama.cpp offloads the last
        weights = sum(fp.layer_bytes(il) for il in on_gpu)
        kv = sum(kv_all[il] for il in on_gpu)
        if gpu_layers > fp.n_layer:  # output head too; a tied head is copied from token_embd
            weights += fp.non_repeating_bytes - fp.token_embd_bytes + (fp.token_embd_bytes
                                                                        if fp.tied_embeddings else 0)
        compute = compute - fp.n_embd * n_ubatch * 4 if gpu_layers else 0  # input embeddings stay on host
        host = fp.weights_bytes - weights + sum(kv_all) - kv + output_buf
        overhead, output = CUDA_OVERHEAD_BYTES, 0  # the output buffer is pinned host memory
    total = weights + kv + compute + output + overhead
    return VramEstimate(weights_bytes=weights, kv_cache_bytes=kv, compute_bytes=compute, output_bytes=output,
                        overhead_bytes=overhead, total_bytes=total, host_bytes=host, kv_cells=n_ctx,
                        n_ubatch=n_ubatch)


def compute_buffer_bytes(fp: ModelFootprint, s: RunSettings, n_ctx_seq: int, n_ubatch: int) -> int:
    """The graph allocator's peak for one prompt micro-batch: the largest of four stages of the graph.

    llama.cpp sizes the compute buffer by allocating the worst-case graph (n_ubatch tokens, every token
    an output, the whole KV cache visible) with ggml-alloc, which reuses freed tensors. So the buffer is
    the largest set of tensors alive at one point; `u` is one f32 row of n_ubatch tokens. Coefficients
    of n_embd (e) etc. count the live activations at that point and were checked against llama.cpp's log.
    """
    u = n_ubatch * 4
    e, hd, hkvd = fp.n_embd, fp.n_head * fp.head_dim, fp.n_head_kv * fp.head_dim
    k_full = n_ctx_seq  # per stream: llama-graph.cpp splits the batch into one stream per sequence
    n_swa = _swa_cells(fp, s, n_ctx_seq, n_ubatch)
    # the KQ mask is f16 with flash attention, f32 without; SWA models carry a second mask
    mask_cells = k_full + (n_swa if n_swa != k_full and any(fp.swa_layers) else 0)
    mask = mask_cells * u // (2 if s.flash_attn else 1)
    n_out = min(n_ubatch, s.parallel * s.outputs_per_slot) if s.outputs_per_slot else n_ubatch
    output = fp.n_vocab * n_out * 4 + 2 * e * u
    if s.flash_attn:
        attention = mask + (3 * e + 2 * hd) * u
    else:  # KQ scores for all heads, softmax in place; V indices are i64 rows of n_head_kv*head_dim
        attention = k_full * fp.n_head * u + mask + (3 * e + 2 * hd + 2 * hkvd) * u
    v_idx = 0 if s.flash_attn else 2 * hkvd * u
    ff = (fp.n_ff_expert or fp.n_ff) * max(fp.n_expert_used, 1) if fp.n_expert else fp.n_ff
    ffn = mask + v_idx + (3 * ff + 4 * e) * u  # up, gate and their product alive together
    return max(output, attention, ffn)


def decode_tokens_per_s(fp: ModelFootprint, settings: RunSettings, bandwidth_bytes_per_s: float,
                        kv_fill: float = 0.5) -> float:
    """Roofline for one sequence's decode: each token reads the weights once (for MoE only the experts in
    use) plus its slot's KV cache filled to `kv_fill` of the context."""
    if bandwidth_bytes_per_s <= 0 or not 0.0 <= kv_fill <= 1.0:
        raise SettingsError("bandwidth must be positive and kv_fill within 0..1", where="decode estimate",
                            fix="pass the device's memory bandwidth in bytes/s")
    est = estimate(fp, replace(settings, device="cpu"))
    active = fp.weights_bytes - fp.token_embd_bytes  # get_rows reads n_embd values, not the matrix
    if fp.n_expert and fp.n_expert_used:
        active -= fp.expert_weights_bytes * (fp.n_expert - fp.n_expert_used) // fp.n_expert
    per_token = active + est.kv_cache_bytes / settings.parallel * kv_fill
    return bandwidth_bytes_per_s / per_token


def _kv_layer_bytes(fp: ModelFootprint, s: RunSettings, il: int, n_ctx_seq: int, n_ubatch: int) -> int:
    """llama-kv-cache.cpp: K is [n_embd_k_gqa, kv_size, n_stream], V likewise (none under MLA)."""
    num, den = KV_TYPES[s.kv_type]
    cells = _swa_cells(fp, s, n_ctx_seq, n_ubatch) if fp.is_swa(il) else n_ctx_seq
    heads = fp.kv_heads()[il] if il < len(fp.kv_heads()) else fp.n_head_kv
    width = heads * fp.head_dim + (0 if fp.mla else heads * fp.value_head_dim)
    return _row_bytes(width, num, den) * cells * s.parallel


def _swa_cells(fp: ModelFootprint, s: RunSettings, n_ctx_seq: int, n_ubatch: int) -> int:
    """llama-kv-cache-iswa.cpp: size_swa = GGML_PAD(min(size_base, n_swa + n_ubatch), 256) per stream."""
    if not fp.sliding_window or s.swa_full:
        return n_ctx_seq
    return min(n_ctx_seq, _pad(fp.sliding_window + n_ubatch))


def _row_bytes(n: int, num: int, den: int) -> int:
    return n * num // den  # ggml_row_size; KV widths are multiples of the 32-element block


def _pad(n: int) -> int:
    return -(-n // _CTX_PAD) * _CTX_PAD


def _gpu_layers(fp: ModelFootprint, s: RunSettings) -> int:
    if s.device == "cpu":
        return 0
    return fp.n_layer + 1 if s.n_gpu_layers is None else min(s.n_gpu_layers, fp.n_layer + 1)


def _validate(fp: ModelFootprint, s: RunSettings) -> None:
    where = f"run settings for {fp.name}"
    if s.kv_type not in KV_TYPES:
        raise SettingsError(f"unknown KV cache type {s.kv_type!r}", where=where,
                            fix=f"use one of {', '.join(KV_TYPES)}")
    if s.kv_type != "f16" and not s.flash_attn:
        # llama-context.cpp refuses a quantized V cache without flash attention
        raise SettingsError(f"a {s.kv_type} KV cache needs flash attention", where=where,
                            fix="turn flash attention on, or use the f16 KV cache")
    if s.device not in DEVICES:
        raise SettingsError(f"unknown device {s.device!r}", where=where, fix="use cpu or cuda")
    for name in ("ctx_tokens", "parallel", "batch", "ubatch"):
        if getattr(s, name) < 1:
            raise SettingsError(f"{name} must be at least 1", where=where, fix=f"raise {name}")
    if s.n_gpu_layers is not None and s.n_gpu_layers < 0:
        raise SettingsError("n_gpu_layers must be 0 or more", where=where,
                            fix="leave it unset to offload all layers")
    if fp.n_ctx_train and s.ctx_tokens > fp.n_ctx_train and not s.allow_ctx_over_train:
        raise SettingsError(f"context {s.ctx_tokens} exceeds the {fp.n_ctx_train} tokens the model was "
                            "trained for", where=where,
                            fix=f"use at most {fp.n_ctx_train}, or allow it explicitly (RoPE scaling)")
