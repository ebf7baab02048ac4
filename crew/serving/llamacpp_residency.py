"""Plan vs reality per server, after the models are loaded.

llama.cpp: the buffers the server logged while loading (`model|KV|compute|output buffer size`, per
backend: CUDA0 means the GPU, CPU/CPU_Mapped the host). On a GPU the device buffers must hold the weights —
any model bytes on CPU_Mapped with all layers offloaded would be a spill. NVML's used memory, when a driver
is present, is the monitor's job (plan-gpus monitor); this check needs no driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from crew.models.llamacpp import MIB, buffers
from crew.serving.spec import LaunchSpec
from crew.units import gib


# Not `Residency`: serving/ollama_residency.py's is one Ollama model's row of /api/ps (its bytes in VRAM); this is
# one llama.cpp server's whole load log against the plan.
@dataclass(frozen=True)
class ServerResidency:
    server_id: str
    planned_bytes: int
    reported_bytes: int          # everything the server logged, all backends
    device_bytes: int            # on the GPU backends (CUDA*) only
    host_model_bytes: int        # weights the log put in host memory
    simulated: bool

    @property
    def ratio(self) -> float:
        return self.reported_bytes / self.planned_bytes if self.planned_bytes else 0.0


class ReportedBuffers(NamedTuple):
    total_bytes: int       # every buffer logged, all backends
    device_bytes: int      # on the GPU backends (CUDA*) only
    host_model_bytes: int  # weights put in host memory


def reported_buffers(log_text: str) -> ReportedBuffers:
    """What a llama.cpp load log says it allocated."""
    total = device = host_model = 0.0
    for b in buffers(log_text):
        size = b.size_mib * MIB
        total += size
        if b.on_gpu:
            device += size
        elif b.kind == "model":
            host_model += size
    return ReportedBuffers(round(total), round(device), round(host_model))


def check(spec: LaunchSpec, log_text: str, planned_bytes: int) -> ServerResidency:
    total, device, host_model = reported_buffers(log_text)
    return ServerResidency(server_id=spec.server_id, planned_bytes=planned_bytes, reported_bytes=total,
                           device_bytes=device, host_model_bytes=host_model, simulated=spec.simulated)


def describe(r: ServerResidency, *, on_gpu: bool) -> str:
    text = f"{r.server_id}: planned {gib(r.planned_bytes, 2)}, server reports {gib(r.reported_bytes, 2)}"
    if on_gpu and not r.simulated:
        text += f" ({gib(r.device_bytes, 2)} on the GPU)"
        if r.device_bytes == 0:
            text += " — NOTHING on the GPU: is this a CPU build of llama-cpp-python? (CMAKE_ARGS=-DGGML_CUDA=on)"
    elif r.simulated:
        text += " (simulated GPU: on the CPU)"
    if r.reported_bytes > r.planned_bytes > 0:
        text += " — more than planned"
    return text
