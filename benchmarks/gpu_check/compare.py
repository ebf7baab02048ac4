"""Measured against estimated, one row per case, and the two outputs: one JSON, one Markdown table. Pure.

The estimate is `plan-gpus estimate --json` for the same file, context and KV type (run.py calls the CLI);
the roofline is that command's `--bandwidth-gbs` figure (KV half full, which the decode is timed at).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.gpu_check.case import CaseResult, CaseSpec
from benchmarks.gpu_check.logparse import LoadBuffers

MIB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    model: str
    ctx_tokens: int
    kv_type: str
    estimate_total_bytes: int        # what the planner reserves: buffers + runtime overhead
    estimate_buffers_bytes: int      # weights + KV + compute + output on the device
    estimate_overhead_bytes: int     # the fixed CUDA_OVERHEAD_BYTES (0 on the CPU)
    buffers_bytes: int               # llama.cpp's device buffers, from its log
    weights_error_bytes: int         # estimate − llama.cpp, per component
    kv_error_bytes: int
    compute_error_bytes: int
    host_bytes: int                  # buffers llama.cpp kept in host memory (CPU, CUDA_Host)
    nvml_delta_bytes: int | None     # NVML used after decoding − before loading: all the process took
    decode_tokens_per_s: float
    roofline_tokens_per_s: float | None
    kv_fill: float
    prefill_tokens_per_s: float
    load_s: float

    @property
    def overhead_bytes(self) -> int | None:
        """What the GPU lost beyond llama.cpp's buffers: CUDA context, cuBLAS, ggml-cuda's pool."""
        return None if self.nvml_delta_bytes is None else self.nvml_delta_bytes - self.buffers_bytes

    @property
    def total_error_bytes(self) -> int | None:
        """Estimate − the real footprint (NVML); positive means the planner reserved more than was used."""
        return None if self.nvml_delta_bytes is None else self.estimate_total_bytes - self.nvml_delta_bytes

    @property
    def roofline_ratio(self) -> float | None:
        return self.decode_tokens_per_s / self.roofline_tokens_per_s if self.roofline_tokens_per_s else None


def make_row(spec: CaseSpec, result: CaseResult, buffers: LoadBuffers, estimate: dict[str, Any]) -> Row:
    """`estimate` is `plan-gpus estimate --json`'s object."""
    d = buffers.device
    delta = None
    if result.nvml_used_after_bytes is not None and result.nvml_used_before_bytes is not None:
        delta = result.nvml_used_after_bytes - result.nvml_used_before_bytes
    est_buffers = sum(int(estimate[k]) for k in ("weights_bytes", "kv_cache_bytes", "compute_bytes",
                                                  "output_bytes"))
    return Row(model=spec.model, ctx_tokens=spec.ctx_tokens, kv_type=spec.kv_type,
               estimate_total_bytes=int(estimate["total_bytes"]), estimate_buffers_bytes=est_buffers,
               estimate_overhead_bytes=int(estimate["overhead_bytes"]), buffers_bytes=d.total_bytes,
               weights_error_bytes=int(estimate["weights_bytes"]) - d.model_bytes,
               kv_error_bytes=int(estimate["kv_cache_bytes"]) - d.kv_cache_bytes,
               compute_error_bytes=int(estimate["compute_bytes"]) - d.compute_bytes,
               host_bytes=buffers.host_bytes, nvml_delta_bytes=delta,
               decode_tokens_per_s=result.decode_tokens_per_s,
               roofline_tokens_per_s=estimate.get("decode_tokens_per_s"), kv_fill=result.kv_fill,
               prefill_tokens_per_s=result.prefill_tokens / result.prefill_s if result.prefill_s > 0 else 0.0,
               load_s=result.load_s)


def row_json(row: Row) -> dict[str, Any]:
    return asdict(row) | {"overhead_bytes": row.overhead_bytes, "total_error_bytes": row.total_error_bytes,
                          "roofline_ratio": row.roofline_ratio}


HEADER = ["model", "ctx", "KV", "estimate MiB", "est. buffers MiB", "llama.cpp buffers MiB", "NVML Δ MiB",
          "overhead MiB", "estimate − NVML Δ MiB", "decode tok/s", "roofline tok/s", "decode / roofline"]


def table_markdown(rows: list[Row], *, device_label: str) -> str:
    """One Markdown table; NVML columns are '—' where there is no NVML (the CPU dry run)."""
    lines = [f"| {' | '.join(HEADER)} |".replace("llama.cpp buffers", f"llama.cpp {device_label} buffers"),
             "|" + "|".join("---" for _ in HEADER) + "|"]
    for r in rows:
        cells = [r.model, str(r.ctx_tokens), r.kv_type, _mib(r.estimate_total_bytes),
                 _mib(r.estimate_buffers_bytes), _mib(r.buffers_bytes), _mib(r.nvml_delta_bytes),
                 _mib(r.overhead_bytes), _mib(r.total_error_bytes, signed=True), f"{r.decode_tokens_per_s:.1f}",
                 "—" if r.roofline_tokens_per_s is None else f"{r.roofline_tokens_per_s:.1f}",
                 "—" if r.roofline_ratio is None else f"{r.roofline_ratio:.2f}"]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _mib(n: int | None, *, signed: bool = False) -> str:
    if n is None:
        return "—"
    return f"{n / MIB:+.0f}" if signed else f"{n / MIB:.0f}"
