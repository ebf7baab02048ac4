"""One load of one model at one context and KV type, in a process of its own: what the GPU's memory was
before and after, what llama.cpp allocated, and how fast it decodes.

A fresh process per case because the CUDA context, cuBLAS and ggml-cuda's pool outlive a freed model: only
the first load in a process shows them in NVML's used memory. llama.cpp is driven through
llama-cpp-python's ctypes bindings; `LLAMA_CPP_LIB_PATH` points them at the CUDA build (run.py sets it), and
without it they load the CPU library the project installs.

    python -m benchmarks.gpu_check.case SPEC_JSON RESULT_JSON
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

_KV_TYPE_IDS = {"f16": 1, "q8_0": 8}  # ggml_type ids (ggml.h); crew/planner/measured.py uses the same
_WARMUP_TOKENS = 2  # the first decodes capture CUDA graphs and grow ggml-cuda's pool: not timed


@dataclass(frozen=True)
class CaseSpec:
    model: str           # the shape's name
    path: str            # the GGUF
    ctx_tokens: int
    kv_type: str         # "f16" or "q8_0" (flash attention on for both: q8_0 needs it)
    gpu: bool            # offload every layer (n_gpu_layers 999) and read NVML
    kv_fill: float = 0.5 # KV cells filled at the middle of the timed decode (what the roofline assumes)
    n_gen: int = 64      # tokens decoded one at a time, timed
    batch: int = 2048
    ubatch: int = 512
    threads: int = 1     # CPU threads (the dry run shares its machine)


@dataclass(frozen=True)
class CaseResult:
    log: str                          # llama.cpp's log of the load (the buffer lines)
    load_s: float
    prefill_tokens: int
    prefill_s: float
    decode_tokens: int
    decode_s: float
    kv_fill: float                    # cells filled / context, at the middle of the timed decode
    nvml_used_before_bytes: int | None = None
    nvml_used_loaded_bytes: int | None = None
    nvml_used_after_bytes: int | None = None  # after decoding: ggml-cuda's pool has grown by then

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode_tokens / self.decode_s if self.decode_s > 0 else 0.0


class MemoryProbe(Protocol):
    """The used memory of GPU 0 (crew.hardware.nvml.PynvmlProvider fits; tests pass none)."""

    def open(self) -> None: ...
    def memory(self, index: int) -> tuple[int, int, int]: ...


def run_case(spec: CaseSpec, probe: MemoryProbe | None) -> CaseResult:
    """Load, prefill to `kv_fill`, decode `n_gen` tokens; the caller's process must not have used CUDA yet."""
    used = _used(probe, opened=False)
    import llama_cpp  # after the first NVML reading: loading the CUDA library may touch the device

    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def _collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(_collect, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    started = time.perf_counter()
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = 999 if spec.gpu else 0
    mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE  # read, not mapped: each buffer holds its tensors
    model = llama_cpp.llama_model_load_from_file(spec.path.encode(), mparams)
    if not model:
        raise RuntimeError(f"llama.cpp could not load {spec.path}:\n{''.join(lines)[-2000:]}")
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx, cparams.n_seq_max = spec.ctx_tokens, 1
    cparams.n_batch, cparams.n_ubatch = spec.batch, spec.ubatch
    cparams.type_k = cparams.type_v = _KV_TYPE_IDS[spec.kv_type]
    cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    cparams.n_threads = cparams.n_threads_batch = spec.threads
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        llama_cpp.llama_model_free(model)
        raise RuntimeError(f"llama.cpp could not create a context:\n{''.join(lines)[-2000:]}")
    load_s = time.perf_counter() - started
    loaded = _used(probe, opened=True)
    try:
        n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
        n_ctx = llama_cpp.llama_n_ctx(ctx)
        prefill = max(1, round(spec.kv_fill * n_ctx) - _WARMUP_TOKENS - spec.n_gen // 2)
        prefill = min(prefill, n_ctx - _WARMUP_TOKENS - spec.n_gen)
        started = time.perf_counter()
        for first in range(0, prefill, spec.batch):
            _decode(llama_cpp, ctx, [_token(i, n_vocab) for i in range(first, min(first + spec.batch, prefill))])
        prefill_s = time.perf_counter() - started
        for i in range(_WARMUP_TOKENS):
            _decode(llama_cpp, ctx, [_token(prefill + i, n_vocab)])
        started = time.perf_counter()
        for i in range(spec.n_gen):
            _decode(llama_cpp, ctx, [_token(prefill + _WARMUP_TOKENS + i, n_vocab)])
        decode_s = time.perf_counter() - started
        after = _used(probe, opened=True)
    finally:
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)
    return CaseResult(log="".join(lines), load_s=load_s, prefill_tokens=prefill, prefill_s=prefill_s,
                      decode_tokens=spec.n_gen, decode_s=decode_s,
                      kv_fill=(prefill + _WARMUP_TOKENS + spec.n_gen / 2) / n_ctx,
                      nvml_used_before_bytes=used, nvml_used_loaded_bytes=loaded, nvml_used_after_bytes=after)


def _token(i: int, n_vocab: int) -> int:
    return 3 + (i * 7919) % (n_vocab - 3)  # ordinary tokens (0-2 are unk, bos, eos), spread over the vocabulary


def _decode(llama_cpp: Any, ctx: Any, tokens: list[int]) -> None:
    """One llama_decode of `tokens` (positions follow the cache), waited for as a sampler would wait."""
    arr = (llama_cpp.llama_token * len(tokens))(*tokens)
    rc = llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(tokens)))
    if rc != 0:
        raise RuntimeError(f"llama_decode returned {rc}")
    llama_cpp.llama_synchronize(ctx)


def _used(probe: MemoryProbe | None, *, opened: bool) -> int | None:
    if probe is None:
        return None
    if not opened:
        probe.open()
    return probe.memory(0)[2]


def main(argv: list[str]) -> int:
    spec = CaseSpec(**json.loads(argv[0]))
    probe = None
    if spec.gpu:
        from crew.hardware.nvml import PynvmlProvider

        probe = PynvmlProvider()
    result = run_case(spec, probe)
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(asdict(result), f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
