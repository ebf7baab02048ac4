"""Failover to another GPU with room: the pure choice, and a real router moving an agent between servers."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crew.config import load_project
from crew.models.embedded import EMBEDDED_TINY_REF
from crew.planner.build import plan_for
from crew.serving.relocate import GpuRelocator, gpu_with_room, relocation_spec
from crew.serving.spec import ServedModel
from crew.units import GIB
from tests.conftest import ROOT


def _plan(rig: str = "4x-rtx3060"):  # type: ignore[no-untyped-def]
    project = load_project(ROOT)
    return plan_for(project.agents, project.layout, profile=rig)


def test_the_gpu_with_the_most_room_that_fits_and_never_the_one_it_was_on() -> None:
    plan = _plan()
    tester = plan.agent("tester")
    room = {g.index: g.usable_bytes - g.planned_bytes for g in plan.gpus}
    target = gpu_with_room(plan, tester, {}, lambda i: None)
    assert target is not None and target.index not in tester.gpu_indices
    fitting = [i for i, r in room.items() if i not in tester.gpu_indices and r >= tester.estimate.total_bytes]
    assert target.index == max(fitting, key=room.__getitem__)
    # what earlier failovers moved there counts against it
    moved = {(target.host, target.index): room[target.index]}
    second = gpu_with_room(plan, tester, moved, lambda i: None)
    assert second is None or second.index != target.index


def test_nvml_free_memory_overrides_the_plan_when_it_can_be_read() -> None:
    plan = _plan()
    tester = plan.agent("tester")
    # every other GPU is nearly full right now (another process started since the plan): nowhere to go
    assert gpu_with_room(plan, tester, {}, lambda i: 512 * 1024**2) is None
    best = gpu_with_room(plan, tester, {}, lambda i: None)
    assert best is not None
    only = gpu_with_room(plan, tester, {}, lambda i: 12 * GIB if i == best.index else 0)
    assert only is not None and only.index == best.index


def test_nothing_fits_excluded_gpus_and_cpu_agents() -> None:
    plan = _plan("rtx3090+rtx5060ti")  # one usable GPU (the 5060 Ti is excluded): nowhere else to go
    manager = plan.agent("manager")
    assert gpu_with_room(plan, manager, {}, lambda i: None) is None
    cpu_plan = _plan("cpu")
    model = ServedModel(alias="m", path="/x.gguf", ctx_tokens=4096, n_gpu_layers=0)
    assert GpuRelocator(cpu_plan)("manager", model, set()) is None  # it was never on a GPU


def test_relocation_spec_is_pinned_like_a_planned_server() -> None:
    plan = _plan()
    tester = plan.agent("tester")
    gpu = next(g for g in plan.gpus if g.index not in tester.gpu_indices)
    gpu = replace(gpu, uuid="GPU-abcd")
    model = ServedModel(alias="qwen", path="/m.gguf", ctx_tokens=8192, n_gpu_layers=999)
    spec = relocation_spec(plan, tester, model, gpu, 12345)
    assert spec.server_id == f"gpu{gpu.index}-failover-tester" and spec.port == 12345
    assert spec.env["CUDA_VISIBLE_DEVICES"] == "GPU-abcd" and spec.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert spec.bind_address == "127.0.0.1" and spec.gpu_uuids == ("GPU-abcd",)
    assert spec.planned_bytes == tester.estimate.total_bytes and spec.models == (model,)


def _kill_twice(tmp_path: Path, *, relocate: bool, cpu: bool) -> dict[str, Any]:
    """Real llama.cpp servers on simulated GPUs: only gpu0 runs (no live server shares its model); its
    server is SIGKILLed, the agent's next call restarts it; killed again, the next call fails over."""
    from crew.config import load_layout
    from crew.journal.log import RunLog
    from crew.serving.bind import cpu_fallback_model
    from crew.serving.failover import Router
    from crew.serving.launch import agent_endpoints, launch_specs
    from crew.serving.llm import served_llm
    from crew.serving.process import Supervisor

    project = load_project(ROOT)
    agents = {n: replace(a, llm=EMBEDDED_TINY_REF, fallbacks=(), num_ctx=2048, cpu_model=EMBEDDED_TINY_REF)
              for n, a in project.agents.items()}  # plumbing: the fast model, on the GPUs and on the CPU
    layout_file = tmp_path / "gpu_layout.yaml"
    layout_file.write_text(
        "backend: llamacpp\nsimulate: true\nbase_port: 12700\nreserve_mib: 512\ngpus:\n"
        "  - {name: RTX 3060, memory_gib: 12, uuid: GPU-11111111-aaaa}\n"
        "  - {name: RTX 3060, memory_gib: 12, uuid: GPU-22222222-bbbb}\n", encoding="utf-8")
    layout = load_layout(layout_file)
    plan = plan_for(agents, layout)
    specs = launch_specs(plan, layout)
    victim = next(a for a in plan.agents if a.gpu_indices == (0,))
    spec0, model = agent_endpoints(plan, specs)[victim.name]
    out: dict[str, Any] = {"started": [], "lines": [], "agent": victim.name, "alias": model.alias}
    project = replace(project, agents=agents)
    supervisor = Supervisor(tmp_path / "servers")
    with supervisor.running([spec0]):
        router = Router(
            supervisor=supervisor, log=RunLog(tmp_path / "run.jsonl"), say=out["lines"].append,
            binding={victim.name: (spec0.server_id, model.alias)},
            cpu_fallback=(lambda a: cpu_fallback_model(project, a)) if cpu else (lambda a: None),
            gpu_fallback=GpuRelocator(plan) if relocate else (lambda a, m, p: None),
            on_started=lambda srv, took: out["started"].append(srv.spec.server_id))
        llm: Any = served_llm(agent=victim.name, base_url=spec0.base_url, model_alias=model.alias,
                              ctx_tokens=model.ctx_tokens, device="gpu 0 (simulated)", max_tokens=8, retries=0,
                              timeout_s=60)
        llm.on_unreachable(router)
        os.kill(supervisor.servers[spec0.server_id].pid, signal.SIGKILL)
        out["first"] = llm.call("Say hi.")  # restarted in place
        os.kill(supervisor.servers[spec0.server_id].pid, signal.SIGKILL)
        out["second"] = llm.call("Say hi.")  # moved
        out["moved_to"] = router.binding[victim.name]
        server = supervisor.servers[out["moved_to"][0]]
        out["environ"] = dict(e.decode().split("=", 1) for e in
                              Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0") if b"=" in e)
        out["served"] = [m.alias for m in server.spec.models]
        out["device"] = llm.device
    out["actions"] = [r["action"] for r in RunLog(tmp_path / "run.jsonl").of("serving_fault")]
    return out


@pytest.mark.slow
def test_a_dead_gpu_server_moves_its_agent_to_a_new_server_on_another_gpu(tmp_path: Path) -> None:
    out = _kill_twice(tmp_path, relocate=True, cpu=True)
    sid = f"gpu1-failover-{out['agent']}"
    assert out["first"] and out["second"] and out["actions"] == ["restarted", "failover"]
    assert out["moved_to"] == (sid, out["alias"]) and out["started"] == [sid]  # before the CPU model
    assert out["environ"]["CUDA_VISIBLE_DEVICES"] == "GPU-22222222-bbbb" and out["served"] == [out["alias"]]
    assert out["device"] == "gpu 1 (simulated) (failover)"
    assert any("which has room for it" in ln for ln in out["lines"])


@pytest.mark.slow
def test_with_no_gpu_room_the_cpu_model_takes_over(tmp_path: Path) -> None:
    # the dead server stays listed in the supervisor: starting the CPU server must not wait on it
    out = _kill_twice(tmp_path, relocate=False, cpu=True)
    assert out["first"] and out["second"] and out["actions"] == ["restarted", "failover"]
    assert out["moved_to"][0] == "cpu-fallback" and out["started"] == ["cpu-fallback"]
    assert out["environ"]["CUDA_VISIBLE_DEVICES"] == "" and out["device"] == "cpu (failover)"


def _fleet_plan(source: str):  # type: ignore[no-untyped-def]
    """Two 12 GB cards, one here and one on `rig`, every agent on embedded-tiny (the planner spreads them
    over both); `source` "cluster" is what a layout naming a Ray cluster plans from."""
    from crew.config.types import DeclaredGpu, LayoutConfig

    project = load_project(ROOT)
    agents = {n: replace(a, llm=EMBEDDED_TINY_REF, fallbacks=(), num_ctx=4096) for n, a in project.agents.items()}
    layout = LayoutConfig(backend="llamacpp", simulate=True, gpus=(
        DeclaredGpu("RTX 3060", 12, uuid="GPU-here"), DeclaredGpu("RTX 3060", 12, uuid="GPU-rig", host="rig")))
    return replace(plan_for(agents, layout), source=source)


def test_in_a_fleet_an_agent_whose_node_is_lost_moves_to_another_nodes_gpu() -> None:
    plan = _fleet_plan("cluster")
    remote = next(a for a in plan.agents if a.host == "rig")
    here = next(a for a in plan.agents if a.host == "local")
    asked: list[int] = []
    target = gpu_with_room(plan, remote, {}, lambda i: asked.append(i) or None)  # type: ignore[func-returns-value]
    assert target is not None and (target.host, target.uuid) == ("local", "GPU-here")  # never back to rig
    assert asked == [target.index]  # NVML is asked about this machine's cards only
    other = gpu_with_room(plan, here, {}, lambda i: None)
    assert other is not None and (other.host, other.uuid) == ("rig", "GPU-rig")  # another node's card
    full = {("rig", other.index): other.usable_bytes}  # earlier failovers filled it: nowhere left
    assert gpu_with_room(plan, here, full, lambda i: None) is None
    model = ServedModel(alias="embedded-tiny", path="/m.gguf", ctx_tokens=4096, n_gpu_layers=0)
    spec = relocation_spec(plan, here, model, other, 12345)
    assert (spec.server_id, spec.machine, spec.planned_pinning) == (f"rig-gpu{other.index}-failover-{here.name}",
                                                                   "rig", "GPU-rig")
    assert spec.failover_from == f"gpu{here.gpu_indices[0]}"


def test_without_a_cluster_a_run_moves_agents_on_this_machine_only() -> None:
    plan = _fleet_plan("declared")
    remote = next(a for a in plan.agents if a.host == "rig")
    here = next(a for a in plan.agents if a.host == "local")
    assert gpu_with_room(plan, remote, {}, lambda i: None) is None
    assert gpu_with_room(plan, here, {}, lambda i: None) is None  # its one local card is the one it left
