"""What llama.cpp itself allocates for a model: the ground truth the estimator is tested against.

llama.cpp logs each buffer it allocates while loading (`model buffer size`, `KV buffer size`,
`output buffer size`, `compute buffer size`). `parse_buffer_log` sums those lines by kind (the parser is
models/llamacpp.py's); `measure_llama_cpp` loads a GGUF through llama-cpp-python's C API on the CPU with the
log captured, and parses what it logged. llama_cpp is imported inside the function only: `plan-gpus` must
never pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crew.errors import ModelError
from crew.models.llamacpp import BUFFER_KINDS, KV_TYPE_IDS, MIB, buffers, captured_log

if TYPE_CHECKING:
    from crew.planner.vram import RunSettings, VramEstimate


@dataclass(frozen=True)
class MeasuredBuffers:
    """Bytes per kind of buffer, summed over llama.cpp's backends (CPU, CPU_REPACK, CUDA0, ...)."""

    model_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    output_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.kv_cache_bytes + self.compute_bytes + self.output_bytes


# Accuracy targets (issue #3): relative error allowed, and an absolute error that is always enough.
TARGETS: dict[str, tuple[float, int]] = {
    "weights": (0.01, 0), "kv_cache": (0.01, 0), "compute": (0.10, 16 * MIB), "total": (0.03, 32 * MIB),
}


@dataclass(frozen=True)
class Comparison:
    component: str      # a key of TARGETS
    estimate_bytes: int
    measured_bytes: int

    @property
    def error_bytes(self) -> int:
        return self.estimate_bytes - self.measured_bytes

    @property
    def error_ratio(self) -> float:
        return self.error_bytes / self.measured_bytes if self.measured_bytes else 0.0

    @property
    def within_target(self) -> bool:
        ratio, absolute = TARGETS[self.component]
        # measured values are printed in MiB with two decimals, so allow that rounding (5 KiB) on top
        return abs(self.error_bytes) <= max(ratio * self.measured_bytes, absolute) + 5 * 1024


def compare(est: VramEstimate, measured: MeasuredBuffers) -> list[Comparison]:
    """Estimate vs llama.cpp, per component (CPU runs: everything is on the one device)."""
    return [
        Comparison("weights", est.weights_bytes, measured.model_bytes),
        Comparison("kv_cache", est.kv_cache_bytes, measured.kv_cache_bytes),
        Comparison("compute", est.compute_bytes, measured.compute_bytes),
        Comparison("total", est.weights_bytes + est.kv_cache_bytes + est.compute_bytes + est.output_bytes,
                   measured.total_bytes),
    ]


def parse_buffer_log(text: str) -> MeasuredBuffers:
    """Sum the buffer sizes llama.cpp logged. The log prints MiB with two decimals (±5 KiB per line)."""
    sums = dict.fromkeys(BUFFER_KINDS, 0.0)
    for b in buffers(text):
        sums[b.kind] += b.size_mib
    if not sums["model"]:
        raise ModelError("llama.cpp logged no buffer sizes", where="llama.cpp load log",
                         fix="load with logging at INFO level")
    return MeasuredBuffers(model_bytes=round(sums["model"] * MIB), kv_cache_bytes=round(sums["KV"] * MIB),
                           compute_bytes=round(sums["compute"] * MIB),
                           output_bytes=round(sums["output"] * MIB))


def measure_llama_cpp(path: Path, settings: RunSettings) -> tuple[MeasuredBuffers, str]:
    """Load `path` on the CPU with llama.cpp under `settings`; return the buffers it logged and the log.

    mmap is off: with mmap, a CPU_Mapped buffer spans the file range of its tensors, and on CPUs where
    llama.cpp repacks some types (Q4_0, Q4_K on AVX2) that range also covers the repacked tensors.
    """
    import llama_cpp  # heavy; test and benchmark use only

    llama_cpp.llama_backend_init()
    with captured_log() as lines:
        model = ctx = None
        try:
            mparams = llama_cpp.llama_model_default_params()
            mparams.n_gpu_layers = 0
            mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
            model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
            if not model:
                raise ModelError("llama.cpp could not load the model", where=str(path), fix="check the file")
            cparams = llama_cpp.llama_context_default_params()
            cparams.n_ctx = settings.ctx_tokens * settings.parallel
            cparams.n_seq_max = settings.parallel
            cparams.n_batch = settings.batch
            cparams.n_ubatch = settings.ubatch
            cparams.type_k = cparams.type_v = KV_TYPE_IDS[settings.kv_type]
            cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if settings.flash_attn
                                       else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
            cparams.swa_full = settings.swa_full
            cparams.n_threads = cparams.n_threads_batch = 1
            ctx = llama_cpp.llama_init_from_model(model, cparams)
            if not ctx:
                raise ModelError("llama.cpp could not create a context", where=str(path), fix="see the log")
        finally:
            if ctx:
                llama_cpp.llama_free(ctx)
            if model:
                llama_cpp.llama_model_free(model)
    text = "".join(lines)
    return parse_buffer_log(text), text
