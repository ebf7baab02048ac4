"""What we read from llama.cpp (crew/models/llamacpp.py): the buffer log by backend and kind, the KV types."""

from __future__ import annotations

import pytest

from crew.models.llamacpp import KV_TYPE_IDS, KV_TYPES, Buffer, buffers
from crew.planner.measured import parse_buffer_log
from crew.planner.vram import KV_TYPES as VRAM_KV_TYPES

GPU_LOG = """load_tensors: offloaded 33/33 layers to GPU
load_tensors:        CUDA0 model buffer size =  4403.49 MiB
load_tensors:   CPU_Mapped model buffer size =   281.81 MiB
llama_kv_cache:      CUDA0 KV buffer size =  1024.00 MiB
llama_context:  CUDA_Host  output buffer size =     0.49 MiB
sched_reserve:      CUDA1 compute buffer size =   258.50 MiB
sched_reserve:  CUDA_Host compute buffer size =    24.01 MiB
"""


def test_buffers_by_backend_and_kind_in_log_order() -> None:
    assert buffers(GPU_LOG) == [
        Buffer("CUDA0", "model", 4403.49), Buffer("CPU_Mapped", "model", 281.81), Buffer("CUDA0", "KV", 1024.0),
        Buffer("CUDA_Host", "output", 0.49), Buffer("CUDA1", "compute", 258.5),
        Buffer("CUDA_Host", "compute", 24.01),
    ]
    assert buffers("load_tensors: offloaded 33/33 layers to GPU\n") == []


def test_only_numbered_cuda_backends_are_the_gpu() -> None:
    assert [b.backend for b in buffers(GPU_LOG) if b.on_gpu] == ["CUDA0", "CUDA0", "CUDA1"]


def test_measured_sums_the_same_lines_by_kind() -> None:
    m = parse_buffer_log(GPU_LOG)
    assert m.model_bytes == round((4403.49 + 281.81) * 1024**2)
    assert m.kv_cache_bytes == 1024 * 1024**2 and m.output_bytes == round(0.49 * 1024**2)


def test_kv_types_are_ggml_s() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")  # ggml.h's ids as the bindings export them
    for name, ggml_id in KV_TYPE_IDS.items():
        assert getattr(llama_cpp, f"GGML_TYPE_{name.upper()}") == ggml_id
    assert list(VRAM_KV_TYPES) == list(KV_TYPES) == ["f16", "q8_0", "q4_0"]
    assert VRAM_KV_TYPES["q8_0"] == (34, 32)
