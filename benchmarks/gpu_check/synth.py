"""Write a synthetic GGUF of a ModelShape: real tensor table and types, random weights.

Memory and decode speed do not depend on the values, so the weights are random blocks of the tensor's ggml
type with their f16 scales set to small finite numbers (random bytes there would give NaN and Inf). The
blocks come from one random pool per type, repeated over each tensor: a 9 GB file costs a copy per tensor,
not 9 GB of random numbers. Tensors are streamed to disk one at a time (gguf's add_tensor_info /
write_tensor_data), so writing never holds the whole file in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.gpu_check.shapes import BLOCKS, ModelShape, TensorSpec, tensors

# Byte offsets of the f16 scales inside one block (ggml-common.h: block_q8_0 {d, qs}, block_q4_K {d, dmin,
# scales, qs}, block_q6_K {ql, qh, scales, d}).
SCALE_OFFSETS: dict[str, tuple[int, ...]] = {"Q8_0": (0,), "Q4_K": (0, 2), "Q6_K": (208,)}
_POOL_BLOCKS = 4096
_FILE_TYPE_Q4_K_M = 15  # llama_ftype LLAMA_FTYPE_MOSTLY_Q4_K_M


def random_pool(ggml_type: str, seed: int = 0) -> Any:
    """`_POOL_BLOCKS` random blocks of `ggml_type` as bytes, every scale a finite f16 in [2^-12, 2^-9]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per_block, block_bytes = BLOCKS[ggml_type]
    if ggml_type == "F32":
        return rng.normal(0.0, 0.02, _POOL_BLOCKS).astype(np.float32).view(np.uint8)
    pool = rng.integers(0, 256, (_POOL_BLOCKS, block_bytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[ggml_type]:
        scales = rng.uniform(2.0**-12, 2.0**-9, _POOL_BLOCKS).astype(np.float16)
        pool[:, off:off + 2] = scales.view(np.uint8).reshape(-1, 2)
    return pool.reshape(-1)


def tensor_data(spec: TensorSpec, pools: dict[str, Any]) -> Any:
    """The tensor's bytes in numpy byte shape (rows..., bytes per row): the pool repeated to its size.
    Norm weights are 1.0, as a trained model's are near."""
    import numpy as np

    per_block, block_bytes = BLOCKS[spec.ggml_type]
    row_bytes = spec.dims[0] // per_block * block_bytes
    byte_shape = (*reversed(spec.dims[1:]), row_bytes)
    if spec.ggml_type == "F32" and spec.name.endswith("norm.weight"):
        return np.ones(spec.dims[::-1], dtype=np.float32).view(np.uint8).reshape(byte_shape)
    return np.resize(pools[spec.ggml_type], spec.n_bytes).reshape(byte_shape)


def write_gguf(path: Path, shape: ModelShape, seed: int = 0) -> Path:
    """Write `shape` to `path` (llama.cpp loads it: tests/test_gpu_check.py); returns `path`."""
    import gguf
    import numpy as np

    path = Path(path)
    specs = tensors(shape)
    for spec in specs:
        if spec.dims[0] % BLOCKS[spec.ggml_type][0]:
            raise ValueError(f"{shape.name}: {spec.name} row of {spec.dims[0]} is not whole "
                             f"{spec.ggml_type} blocks")
    w = gguf.GGUFWriter(str(path), shape.arch)
    _header(w, shape, path.stem)
    qtypes = {name: gguf.GGMLQuantizationType[name] for name in BLOCKS}
    for spec in specs:
        per_block, block_bytes = BLOCKS[spec.ggml_type]
        byte_shape = [*reversed(spec.dims[1:]), spec.dims[0] // per_block * block_bytes]
        w.add_tensor_info(spec.name, byte_shape, np.dtype(np.uint8), spec.n_bytes,
                          raw_dtype=qtypes[spec.ggml_type])
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    pools = {name: random_pool(name, seed + i) for i, name in enumerate(BLOCKS)}
    for spec in specs:
        w.write_tensor_data(tensor_data(spec, pools))
    w.close()
    return path


def _header(w: Any, s: ModelShape, name: str) -> None:
    import gguf

    w.add_name(name)
    w.add_block_count(s.n_layer)
    w.add_context_length(s.n_ctx_train)
    w.add_embedding_length(s.n_embd)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_key_length(s.head_dim)
    w.add_value_length(s.head_dim)
    w.add_rope_dimension_count(s.head_dim)
    w.add_rope_freq_base(500000.0 if s.arch == "llama" else 1000000.0)
    w.add_layer_norm_rms_eps(1e-5 if s.arch == "llama" else 1e-6)
    w.add_file_type(_FILE_TYPE_Q4_K_M)
    # A SentencePiece-style vocabulary of n_vocab tokens: llama.cpp needs one to load, and its length is
    # the vocabulary size the logits and the output buffer are sized by.
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(3, s.n_vocab)])
    w.add_token_scores([0.0] * s.n_vocab)
    w.add_token_types([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
                      + [gguf.TokenType.NORMAL] * (s.n_vocab - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
