"""Write synthetic GGUF models that llama.cpp can load, for tests that need a real file but no real model.

The weights are zeros: memory planning only cares about shapes and types, and zeros keep writing fast (the
quantized blocks then have scale 0, which is a valid value). Usable on its own:

    path = write_synthetic_gguf(tmp_path / "m.gguf", n_layer=4, n_embd=512, n_head=8, n_head_kv=2,
                                n_vocab=32000)

Architectures: "llama" (dense or MoE with n_expert > 0) and "gemma3" (sliding-window layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from crew.planner.vram import RunSettings

# Run settings of the accuracy checks (CPU: llama.cpp then logs every buffer on one device).
EMBEDDED_SETTINGS = [
    RunSettings(ctx_tokens=ctx, ubatch=ub, kv_type=kv, flash_attn=fa, device="cpu")
    for ctx in (512, 2048, 4096, 8192)
    for ub in (512, 128)
    for kv, fa in (("f16", True), ("q8_0", True), ("f16", False))
]
SYNTHETIC_SETTINGS = [
    RunSettings(ctx_tokens=2048, ubatch=512, kv_type="f16", flash_attn=True, device="cpu"),
    RunSettings(ctx_tokens=4096, ubatch=512, kv_type="f16", flash_attn=False, device="cpu"),
    RunSettings(ctx_tokens=8192, ubatch=256, kv_type="q8_0", flash_attn=True, device="cpu"),
    RunSettings(ctx_tokens=1024, ubatch=512, kv_type="q4_0", flash_attn=True, device="cpu"),
    RunSettings(ctx_tokens=2048, ubatch=512, kv_type="f16", flash_attn=False, parallel=2, device="cpu"),
]


def settings_label(s: RunSettings) -> str:
    return f"ctx{s.ctx_tokens}-ub{s.ubatch}-{s.kv_type}-{'fa' if s.flash_attn else 'nofa'}-p{s.parallel}"


_QTYPES = {
    "F32": gguf.GGMLQuantizationType.F32,
    "F16": gguf.GGMLQuantizationType.F16,
    "Q8_0": gguf.GGMLQuantizationType.Q8_0,
    "Q4_0": gguf.GGMLQuantizationType.Q4_0,
    "Q4_K": gguf.GGMLQuantizationType.Q4_K,
    "Q5_K": gguf.GGMLQuantizationType.Q5_K,
    "Q6_K": gguf.GGMLQuantizationType.Q6_K,
}
_FILE_TYPES = {"F16": 1, "Q8_0": 7, "Q4_0": 2, "Q4_K": 15, "Q5_K": 17, "Q6_K": 18, "F32": 0}

# The synthetic models the estimator is checked against (tests/test_vram_llamacpp.py, the benchmark): they
# differ in depth, width, head ratio, vocabulary, weight type, tied or separate output, MoE and SWA.
SYNTHETIC_MODELS: dict[str, dict[str, Any]] = {
    "mha-32k": dict(n_layer=4, n_embd=1024, n_head=16, n_head_kv=16, n_vocab=32000),
    "gqa4-128k-q4k": dict(n_layer=6, n_embd=1024, n_head=16, n_head_kv=4, n_vocab=128256, weight_type="Q4_K",
                          tied_embeddings=True),
    "gqa8-49k-q5k": dict(n_layer=3, n_embd=2048, n_head=32, n_head_kv=4, n_vocab=49152, n_ff=4096,
                         weight_type="Q5_K", tied_embeddings=True),
    "gqa8-hd128-65k": dict(n_layer=3, n_embd=1024, n_head=16, n_head_kv=2, head_dim=128, n_vocab=65536,
                           n_ff=3072, weight_type="Q6_K"),
    "gqa4-2k-vocab": dict(n_layer=2, n_embd=1024, n_head=32, n_head_kv=8, head_dim=64, n_vocab=2048,
                          n_ff=2048),
    "moe-8x2": dict(n_layer=4, n_embd=512, n_head=8, n_head_kv=2, n_vocab=32000, n_ff=1024, n_expert=8,
                    n_expert_used=2),
    "gemma3-swa": dict(arch="gemma3", n_layer=6, n_embd=640, n_head=4, n_head_kv=1, head_dim=256,
                       n_vocab=65536, n_ff=2048, sliding_window=512, tied_embeddings=True),
}


def _zeros(writer: gguf.GGUFWriter, name: str, shape: Sequence[int], qtype: str) -> None:
    """Add a zero tensor; `shape` is in ggml order (ne0 first), as llama.cpp's create_tensor writes it."""
    q = _QTYPES[qtype]
    block, type_size = gguf.GGML_QUANT_SIZES[q]
    ne0, rest = shape[0], list(shape[1:])
    if ne0 % block:
        q, block, type_size = gguf.GGMLQuantizationType.F32, 1, 4  # e.g. a 1-D norm or an odd-width row
    data = np.zeros([*reversed(rest), ne0 // block * type_size], dtype=np.uint8)
    writer.add_tensor(name, data, raw_dtype=q)


def write_synthetic_gguf(
    path: Path,
    *,
    n_layer: int,
    n_embd: int,
    n_head: int,
    n_head_kv: int,
    n_vocab: int,
    n_ff: int | None = None,
    head_dim: int | None = None,
    n_ctx_train: int = 8192,
    arch: str = "llama",
    weight_type: str = "Q8_0",
    tied_embeddings: bool = False,
    n_expert: int = 0,
    n_expert_used: int = 0,
    sliding_window: int = 0,
    swa_pattern: int = 6,
) -> Path:
    """Write a loadable GGUF with the given shape; returns `path`.

    `swa_pattern` (gemma3 only): every swa_pattern-th layer is global, the others use `sliding_window`.
    """
    if arch not in ("llama", "gemma3"):
        raise ValueError(f"unsupported synthetic architecture {arch!r}")
    n_ff = n_ff or 4 * n_embd
    head_dim = head_dim or n_embd // n_head
    path = Path(path)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(path.stem)
    w.add_block_count(n_layer)
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(_FILE_TYPES[weight_type])
    if n_expert:
        w.add_expert_count(n_expert)
        w.add_expert_used_count(n_expert_used or 2)
    if arch == "gemma3":
        w.add_sliding_window(sliding_window or 512)
        w.add_sliding_window_pattern([(i + 1) % swa_pattern != 0 for i in range(n_layer)])
    _vocab(w, n_vocab)

    _zeros(w, "token_embd.weight", (n_embd, n_vocab), weight_type)
    _zeros(w, "output_norm.weight", (n_embd,), "F32")
    if not tied_embeddings:
        _zeros(w, "output.weight", (n_embd, n_vocab), weight_type)
    for i in range(n_layer):
        _layer(w, i, arch=arch, n_embd=n_embd, q_dim=n_head * head_dim, kv_dim=n_head_kv * head_dim,
               head_dim=head_dim, n_ff=n_ff, n_expert=n_expert, qtype=weight_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _layer(w: gguf.GGUFWriter, i: int, *, arch: str, n_embd: int, q_dim: int, kv_dim: int, head_dim: int,
           n_ff: int, n_expert: int, qtype: str) -> None:
    p = f"blk.{i}."
    _zeros(w, p + "attn_norm.weight", (n_embd,), "F32")
    _zeros(w, p + "attn_q.weight", (n_embd, q_dim), qtype)
    _zeros(w, p + "attn_k.weight", (n_embd, kv_dim), qtype)
    _zeros(w, p + "attn_v.weight", (n_embd, kv_dim), qtype)
    _zeros(w, p + "attn_output.weight", (q_dim, n_embd), qtype)
    _zeros(w, p + "ffn_norm.weight", (n_embd,), "F32")
    if arch == "gemma3":
        for name in ("attn_q_norm", "attn_k_norm"):
            _zeros(w, p + name + ".weight", (head_dim,), "F32")
        for name in ("post_attention_norm", "post_ffw_norm"):
            _zeros(w, p + name + ".weight", (n_embd,), "F32")
    if n_expert:
        _zeros(w, p + "ffn_gate_inp.weight", (n_embd, n_expert), "F32")
        _zeros(w, p + "ffn_gate_exps.weight", (n_embd, n_ff, n_expert), qtype)
        _zeros(w, p + "ffn_up_exps.weight", (n_embd, n_ff, n_expert), qtype)
        _zeros(w, p + "ffn_down_exps.weight", (n_ff, n_embd, n_expert), qtype)
    else:
        _zeros(w, p + "ffn_gate.weight", (n_embd, n_ff), qtype)
        _zeros(w, p + "ffn_up.weight", (n_embd, n_ff), qtype)
        _zeros(w, p + "ffn_down.weight", (n_ff, n_embd), qtype)


def _vocab(w: gguf.GGUFWriter, n_vocab: int) -> None:
    """A SentencePiece-style vocabulary: llama.cpp needs one to load, and its length is n_vocab."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(3, n_vocab)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.NORMAL] * (n_vocab - 3)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
