"""Plan vs the buffers a llama.cpp server logged."""

from __future__ import annotations

import pytest

from crew.serving.llamacpp_residency import check, describe, reported_buffers
from crew.serving.spec import ServedModel, llamacpp_spec

CPU_LOG = """load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
llama_context:        CPU  output buffer size =     0.19 MiB
llama_kv_cache:        CPU KV buffer size =   180.00 MiB
sched_reserve:        CPU compute buffer size =    98.25 MiB
"""
GPU_LOG = """load_tensors: offloaded 33/33 layers to GPU
load_tensors:        CUDA0 model buffer size =  4403.49 MiB
load_tensors:   CPU_Mapped model buffer size =   281.81 MiB
llama_kv_cache:      CUDA0 KV buffer size =  1024.00 MiB
llama_context:  CUDA_Host  output buffer size =     0.49 MiB
sched_reserve:      CUDA0 compute buffer size =   258.50 MiB
sched_reserve:  CUDA_Host compute buffer size =    24.01 MiB
"""
MIB = 1024**2


def _spec(sid: str = "gpu0", simulated: bool = False):  # type: ignore[no-untyped-def]
    return llamacpp_spec(sid, (ServedModel(alias="m", path="/m.gguf", ctx_tokens=8192),), 12000, simulated=simulated)


def test_cpu_log_sums_every_buffer() -> None:
    total, device, host_model = reported_buffers(CPU_LOG)
    assert abs(total - (92.10 + 0.19 + 180 + 98.25) * MIB) < MIB and device == 0
    assert abs(host_model - 92.10 * MIB) < MIB


def test_gpu_log_separates_device_and_host() -> None:
    r = check(_spec(), GPU_LOG, planned_bytes=6 * 1024**3)
    assert abs(r.device_bytes - (4403.49 + 1024 + 258.50) * MIB) < MIB
    assert abs(r.host_model_bytes - 281.81 * MIB) < MIB  # the token embedding stays on the host
    assert "on the GPU" in describe(r, on_gpu=True) and "NOTHING" not in describe(r, on_gpu=True)


def test_a_gpu_server_with_nothing_on_the_gpu_is_called_out() -> None:
    r = check(_spec(), CPU_LOG, planned_bytes=512 * MIB)
    assert "NOTHING on the GPU" in describe(r, on_gpu=True)
    sim = check(_spec(simulated=True), CPU_LOG, planned_bytes=512 * MIB)
    assert "simulated" in describe(sim, on_gpu=True) and "NOTHING" not in describe(sim, on_gpu=True)


def test_a_failover_server_is_checked_against_the_moved_agents_estimate(project_dir) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    from dataclasses import replace

    from crew.config import load_project
    from crew.errors import ServingError
    from crew.journal.log import RunLog
    from crew.planner.build import plan_project
    from crew.serving.process import RunningServer
    from crew.serving.session import ServerSession

    log = project_dir / "gpu1-failover-tester.log"
    log.write_text(CPU_LOG, encoding="utf-8")
    spec = replace(_spec("gpu1-failover-tester"), planned_bytes=700 * MIB, gpu_indices=(1,))
    project = load_project(project_dir)
    run_log = RunLog(project_dir / "run.jsonl")
    lines: list[str] = []
    session = ServerSession(project, plan_project(project), state_dir=project_dir / "servers", keep=False,
                            say=lines.append, log=run_log)
    done = subprocess.Popen(["true"])  # the server's process: only its pid is read
    done.wait()
    with pytest.raises(ServingError, match="not on the GPU"):  # a GPU server with nothing on the GPU fails
        session.ready(RunningServer(spec=spec, process=done, log_path=log, started_s=0.0), 0.1)
    (rec,) = run_log.of("residency")
    assert rec["server"] == "gpu1-failover-tester" and rec["planned_bytes"] == 700 * MIB
