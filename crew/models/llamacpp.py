"""What we read from llama.cpp, in one place: its buffer log, its KV cache types, and a captured log.

- **Buffer log.** While loading, llama.cpp logs every buffer it allocates, one line per backend and kind:
  `CUDA0 model buffer size = 8148.38 MiB`, `CPU_Mapped model buffer size = ...`, `CUDA0 KV buffer size`,
  `CUDA_Host output buffer size`, `CPU compute buffer size`. `buffers` parses them; the estimator's tests
  (planner/measured.py) sum them by kind, the residency check (serving/llamacpp_residency.py) by backend.
- **KV cache types**: the ggml type id (ggml.h `GGML_TYPE_*`, what `--type_k` and `type_k` take) and the
  block size (ggml.c type_traits) of each type a KV cache may use.
- **Captured log**: llama_cpp's log callback pointed at a list for the duration of a `with`, and back at
  llama-cpp-python's own logger afterwards.

Nothing here imports llama_cpp at module level: `plan-gpus` must never pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MIB = 1024**2
BUFFER_KINDS = ("model", "KV", "output", "compute")
_BUFFER_LINE = re.compile(r"(\S+)\s+(model|KV|output|compute) buffer size\s*=\s*([\d.]+) MiB")
_GPU_BACKEND = re.compile(r"CUDA\d+")  # CUDA_Host is pinned host memory, not the GPU


@dataclass(frozen=True)
class Buffer:
    """One logged buffer. The log prints MiB with two decimals (±5 KiB per line), kept as printed."""

    backend: str  # CPU, CPU_Mapped, CPU_REPACK, CUDA0, CUDA_Host, ...
    kind: str  # one of BUFFER_KINDS
    size_mib: float

    @property
    def on_gpu(self) -> bool:
        return _GPU_BACKEND.fullmatch(self.backend) is not None


def buffers(log_text: str) -> list[Buffer]:
    """Every buffer a llama.cpp load log reports, in the order logged."""
    return [Buffer(backend, kind, float(mib)) for backend, kind, mib in _BUFFER_LINE.findall(log_text)]


@dataclass(frozen=True)
class KvType:
    name: str  # as users write it: gpu_layout.yaml `kv_type`, `estimate --kv-type`
    ggml_id: int  # ggml.h GGML_TYPE_*: llama.cpp's `type_k` / `type_v`
    block_bytes: int  # bytes of one block of `block_elems` elements (ggml.c type_traits)
    block_elems: int


# f16 2 B per element; q8_0 34 B and q4_0 18 B per block of 32. Order: the estimator's and the CLI's.
KV_TYPES: dict[str, KvType] = {
    t.name: t for t in (KvType("f16", 1, 2, 1), KvType("q8_0", 8, 34, 32), KvType("q4_0", 2, 18, 32))
}
KV_TYPE_IDS: dict[str, int] = {name: t.ggml_id for name, t in KV_TYPES.items()}

# The KV cache type on GPUs when nothing says otherwise (gpu_layout.yaml `kv_type`, `estimate --kv-type`):
# q8_0 halves f16's KV memory at a negligible quality cost, which is what lets the 14B coder at 16k context
# fit a 12 GB card. CPU models keep f16 (the CPU backend's quantized KV path is slower there).
GPU_KV_TYPE = "q8_0"


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """llama.cpp's log lines while the block runs, in a list; llama-cpp-python's logger again after it.

    The list is yielded at once and filled as llama.cpp logs; it stays readable after the block.
    """
    import ctypes

    import llama_cpp  # heavy: only here
    from llama_cpp import _logger

    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def _collect(level: int, text: bytes, user_data: object) -> None:
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(_collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
