"""llama.cpp's load log → the buffers on the GPU and those left in host memory.

The project's two readers of these lines are reused, not copied: `crew.serving.llamacpp_residency.
reported_buffers` tells a GPU line (backend `CUDA<n>`; `CUDA_Host` is pinned host memory) from a host line,
and `crew.planner.measured.parse_buffer_log` sums a text's lines by kind (model, KV, compute, output).
"""

from __future__ import annotations

from dataclasses import dataclass

from crew.planner.measured import MeasuredBuffers, parse_buffer_log
from crew.serving.llamacpp_residency import reported_buffers


@dataclass(frozen=True)
class LoadBuffers:
    device: MeasuredBuffers  # on the GPU; on a CPU run, every buffer (the CPU is the device)
    host_bytes: int          # everything else the log reports (CPU, CPU_Mapped, CUDA_Host)
    on_gpu: bool             # whether any buffer line named a CUDA device


def load_buffers(log_text: str) -> LoadBuffers:
    """Split the load log by where each buffer lives; ModelError when it logged no model buffer."""
    lines = log_text.splitlines()
    gpu_lines = [line for line in lines if reported_buffers(line)[1] > 0]
    total, _, _ = reported_buffers(log_text)
    device = parse_buffer_log("\n".join(gpu_lines) if gpu_lines else log_text)
    return LoadBuffers(device=device, host_bytes=total - device.total_bytes if gpu_lines else 0,
                       on_gpu=bool(gpu_lines))
