"""The model shapes the CUDA check loads, and the Q4_K_M-like type of each tensor. Pure data.

8B and 14B are the catalog's Llama-3.1-8B and Qwen2.5-Coder-14B (crew/models/catalog.yaml: one place for
their architecture numbers); 1B is Llama-3.2-1B, which the catalog does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

# ggml block geometry: (elements per block, bytes per block) — gguf's GGML_QUANT_SIZES, repeated here so the
# layout stays pure and importable without numpy. tests/test_gpu_check.py checks it against gguf's table.
BLOCKS: dict[str, tuple[int, int]] = {"F32": (1, 4), "Q8_0": (32, 34), "Q4_K": (256, 144), "Q6_K": (256, 210)}


@dataclass(frozen=True)
class ModelShape:
    name: str            # how the table names it: "1B", "8B", "14B"
    source: str          # where the numbers come from
    arch: str            # "llama" or "qwen2" (q/k/v biases)
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    tied_embeddings: bool
    quant: str = "Q4_K_M"  # the mix: Q4_K, with Q6_K where llama-quant gives Q4_K_M more bits

    @property
    def q_dim(self) -> int:
        return self.n_head * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_head_kv * self.head_dim


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple[int, ...]  # ggml order: ne0 (the row) first
    ggml_type: str         # a key of BLOCKS

    @property
    def n_bytes(self) -> int:
        per_block, block_bytes = BLOCKS[self.ggml_type]
        rows = 1
        for d in self.dims[1:]:
            rows *= d
        return rows * (self.dims[0] // per_block) * block_bytes


LLAMA_3_2_1B = ModelShape(
    name="1B", source="Llama-3.2-1B config.json (huggingface.co/meta-llama/Llama-3.2-1B)", arch="llama",
    n_layer=16, n_embd=2048, n_head=32, n_head_kv=8, head_dim=64, n_ff=8192, n_vocab=128256,
    n_ctx_train=131072, tied_embeddings=True)


def from_catalog(tag: str, name: str) -> ModelShape:
    """The architecture numbers the catalog holds for `tag`."""
    from crew.models.catalog import lookup

    entry = lookup(tag)
    if entry is None:
        raise KeyError(f"{tag} is not in crew/models/catalog.yaml")
    m = entry.model
    return ModelShape(name=name, source=f"catalog {tag}: {m['config']}", arch=str(m["architecture"]),
                      n_layer=int(m["n_layer"]), n_embd=int(m["n_embd"]), n_head=int(m["n_head"]),
                      n_head_kv=int(m["n_head_kv"]), head_dim=int(m["head_dim"]), n_ff=int(m["n_ff"]),
                      n_vocab=int(m["n_vocab"]), n_ctx_train=int(m["n_ctx_train"]),
                      tied_embeddings=bool(m["tied_embeddings"]))


def gpu_shapes() -> tuple[ModelShape, ...]:
    return (LLAMA_3_2_1B, from_catalog("llama3.1:8b", "8B"), from_catalog("qwen2.5-coder:14b", "14B"))


# The dry run's model: every row a multiple of 256 (K-quant blocks), small enough to load in a second.
TINY = ModelShape(name="tiny", source="CPU dry run", arch="llama", n_layer=2, n_embd=256, n_head=4,
                  n_head_kv=2, head_dim=64, n_ff=512, n_vocab=1024, n_ctx_train=4096, tied_embeddings=False)
TINY_QWEN = ModelShape(name="tiny-qwen2", source="CPU dry run", arch="qwen2", n_layer=2, n_embd=256, n_head=4,
                       n_head_kv=2, head_dim=64, n_ff=512, n_vocab=1024, n_ctx_train=4096,
                       tied_embeddings=True)


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp: the layers a _M mix gives Q6_K for attn_v and ffn_down (first and last eighth, and
    every third layer in between)."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensors(shape: ModelShape) -> list[TensorSpec]:
    """Every tensor of the file, in writing order, with its Q4_K_M-like type (llama-quant.cpp
    llama_tensor_get_type: output Q6_K, a tied token_embd is treated as the output; attn_v and ffn_down
    Q6_K on use_more_bits layers; the rest Q4_K; norms and biases F32)."""
    s = shape
    out = [TensorSpec("token_embd.weight", (s.n_embd, s.n_vocab), "Q6_K" if s.tied_embeddings else "Q4_K"),
           TensorSpec("output_norm.weight", (s.n_embd,), "F32")]
    if not s.tied_embeddings:
        out.append(TensorSpec("output.weight", (s.n_embd, s.n_vocab), "Q6_K"))
    for i in range(s.n_layer):
        p, more = f"blk.{i}.", use_more_bits(i, s.n_layer)
        out += [TensorSpec(p + "attn_norm.weight", (s.n_embd,), "F32"),
                TensorSpec(p + "attn_q.weight", (s.n_embd, s.q_dim), "Q4_K"),
                TensorSpec(p + "attn_k.weight", (s.n_embd, s.kv_dim), "Q4_K"),
                TensorSpec(p + "attn_v.weight", (s.n_embd, s.kv_dim), "Q6_K" if more else "Q4_K"),
                TensorSpec(p + "attn_output.weight", (s.q_dim, s.n_embd), "Q4_K"),
                TensorSpec(p + "ffn_norm.weight", (s.n_embd,), "F32"),
                TensorSpec(p + "ffn_gate.weight", (s.n_embd, s.n_ff), "Q4_K"),
                TensorSpec(p + "ffn_up.weight", (s.n_embd, s.n_ff), "Q4_K"),
                TensorSpec(p + "ffn_down.weight", (s.n_ff, s.n_embd), "Q6_K" if more else "Q4_K")]
        if s.arch == "qwen2":
            out += [TensorSpec(p + "attn_q.bias", (s.q_dim,), "F32"),
                    TensorSpec(p + "attn_k.bias", (s.kv_dim,), "F32"),
                    TensorSpec(p + "attn_v.bias", (s.kv_dim,), "F32")]
    return out


def file_bytes(shape: ModelShape) -> int:
    """Tensor data of the file (the header adds the vocabulary: a few MB)."""
    return sum(t.n_bytes for t in tensors(shape))
