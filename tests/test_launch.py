"""Plan → launch specs (pure): one server per GPU, pinning by UUID, ports in order, shared models, the CPU
server, splits, simulated plans, and each agent's endpoint."""

from __future__ import annotations

import os
from dataclasses import replace

from crew.config import LayoutConfig, load_project
from crew.planner.build import plan_for, plan_project
from crew.planner.plan import AgentPlacement, Plan
from crew.planner.vram import VramEstimate
from crew.serving.launch import agent_endpoints, device_id, launch_specs, model_alias, planned_bytes
from tests.conftest import ROOT
from tests.layouts import FOUR_3060, FakeNvml, ram

PROJECT = load_project(ROOT)
EST = VramEstimate(1, 1, 1, 0, 1, 4)


def test_4x3060_four_pinned_servers_on_consecutive_ports() -> None:
    plan = plan_project(PROJECT, nvml=FakeNvml(FOUR_3060), ram=lambda: ram())
    specs = launch_specs(plan, PROJECT.layout)
    assert [s.server_id for s in specs] == ["gpu0", "gpu1", "gpu2", "gpu3"]
    assert [s.port for s in specs] == [11500, 11501, 11502, 11503]
    for i, s in enumerate(specs):
        assert s.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": f"GPU-3060-{i:04d}"}
        assert s.gpu_uuids == (f"GPU-3060-{i:04d}",) and s.backend == "llamacpp" and not s.simulated
        assert "--host" in s.argv and "127.0.0.1" in s.argv
    ends = agent_endpoints(plan, specs)
    assert set(ends) == {"manager", "developer", "tester", "documentation"}
    spec, model = ends["developer"]
    assert model.alias == "qwen2.5-coder:14b" and model.ctx_tokens == 16384 and model.n_gpu_layers == -1
    assert model.kv_type == "q8_0" and model.flash_attn  # the shipped gpu_layout.yaml's KV cache
    assert spec.unresolved_models == ("qwen2.5-coder:14b",)  # a catalog model: to be pulled first


def _placement(
    name: str,
    model: str,
    gpus: tuple[int, ...],
    *,
    placement: str = "gpu",
    ctx: int = 8192,
    path: str | None = "/m/x.gguf",
    split: tuple[float, ...] = (),
) -> AgentPlacement:
    return AgentPlacement(name, model, 0, placement, gpus, ctx, EST, model_path=path, tensor_split=split)


def _plan(*agents: AgentPlacement, simulated: bool = False) -> Plan:
    return Plan(
        feasible=True,
        gpus=(),
        agents=agents,
        unplaced=(),
        warnings=(),
        simulated=simulated,
        source="declared",
    )


def test_each_model_on_a_gpu_gets_its_own_pinned_server_and_agents_on_it_share_one_copy() -> None:
    """llama-cpp-python's multi-model server keeps one model loaded and reloads on every switch, so two
    models on GPU 1 are two processes, both pinned to GPU 1; agents on one model share its server."""
    plan = _plan(
        _placement("developer", "/m/coder.gguf", (1,), ctx=16384, path="/m/coder.gguf"),
        _placement("tester", "/m/coder.gguf", (1,), path="/m/coder.gguf"),
        _placement("manager", "ollama/qwen3:8b", (1,), path="/blobs/sha256-1"),
    )
    coder, qwen = launch_specs(plan, LayoutConfig(base_port=12000))
    assert [(s.server_id, s.port) for s in (coder, qwen)] == [("gpu1-coder", 12000), ("gpu1-qwen3-8b", 12001)]
    assert {s.env["CUDA_VISIBLE_DEVICES"] for s in (coder, qwen)} == {"1"}
    assert coder.gpu_indices == qwen.gpu_indices == (1,) and coder.on_gpu
    assert [(m.alias, m.ctx_tokens) for m in coder.models] == [("coder", 16384)]
    assert [(m.alias, m.ctx_tokens) for m in qwen.models] == [("qwen3:8b", 8192)]
    assert coder.config_json is None and qwen.config_json is None  # one model each: plain flags
    assert coder.agents == ("developer", "tester") and qwen.agents == ("manager",)
    ends = agent_endpoints(plan, [coder, qwen])
    assert ends["tester"][1] is ends["developer"][1] and ends["manager"][0] is qwen
    # the plan's figure per server: the model once, each further agent's own KV cache on top — at the server's
    # context (every slot gets the largest any agent asked for): the tester's 8192 counts as 16384, twice
    assert coder.planned_bytes == EST.total_bytes + 2 * EST.kv_cache_bytes + EST.output_bytes
    assert qwen.planned_bytes == EST.total_bytes == planned_bytes([plan.agents[2]])


def test_cpu_placements_share_one_server_that_sees_no_gpu() -> None:
    plan = _plan(
        _placement("manager", "embedded", (), placement="cpu", path="/e.gguf"),
        _placement("tester", "embedded", (), placement="cpu", path="/e.gguf"),
        _placement("developer", "/m/c.gguf", (0,)),
        AgentPlacement("documentation", "openrouter/x", 4, "api", (), 8192, EST),
    )
    specs = launch_specs(plan, LayoutConfig())
    assert [s.server_id for s in specs] == ["gpu0", "cpu"]
    cpu = specs[1]
    assert cpu.env["CUDA_VISIBLE_DEVICES"] == "" and cpu.models[0].n_gpu_layers == 0 and len(cpu.models) == 1
    assert "documentation" not in agent_endpoints(plan, specs)


def test_split_server_pins_its_group_with_the_planned_tensor_split() -> None:
    plan = _plan(_placement("developer", "/m/70b.gguf", (0, 1), placement="split", split=(0.5, 0.5)))
    (spec,) = launch_specs(plan, LayoutConfig())
    assert spec.server_id == "gpu0+1" and spec.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "--tensor_split" in spec.argv and spec.models[0].tensor_split == (0.5, 0.5)


def test_simulated_plan_runs_on_the_cpu_with_the_planned_pinning() -> None:
    plan = _plan(_placement("developer", "/m/c.gguf", (2,)), simulated=True)
    (spec,) = launch_specs(plan, LayoutConfig())
    assert spec.simulated and spec.env["CUDA_VISIBLE_DEVICES"] == "2" and spec.gpu_uuids == ()
    assert spec.env["LOCALCREW_SIMULATED"] == "1"
    assert spec.planned_pinning == "2" and spec.models[0].n_gpu_layers == 0


def test_simulated_gpus_share_the_machines_cores() -> None:
    from crew.serving.launch import _groups, simulated_threads

    plan = _plan(*(_placement(n, f"/m/{n}.gguf", (i,)) for i, n in enumerate(("manager", "developer", "tester"))),
                 simulated=True)
    assert simulated_threads(plan, _groups(plan), 2) == 1     # three servers on two cores: one thread each
    assert simulated_threads(plan, _groups(plan), 16) == 5
    specs = launch_specs(plan, LayoutConfig())
    assert {s.models[0].n_threads for s in specs} == {simulated_threads(plan, _groups(plan), os.cpu_count() or 1)}
    real = _plan(_placement("developer", "/m/c.gguf", (0,)))
    assert simulated_threads(real, _groups(real), 2) == -1
    assert launch_specs(real, LayoutConfig())[0].models[0].n_threads == 0


def test_other_hosts_get_their_own_ports_and_names() -> None:
    a = replace(_placement("manager", "/m/a.gguf", (0,)), host="ws2")
    b = _placement("tester", "/m/b.gguf", (0,))
    specs = launch_specs(_plan(a, b), LayoutConfig())
    assert [(s.server_id, s.port, s.machine) for s in specs] == [
        ("gpu0", 11500, "local"),
        ("ws2-gpu0", 11500, "ws2"),
    ]


def test_ollama_backend_specs() -> None:
    plan = replace(
        plan_for(PROJECT.agents, LayoutConfig(backend="ollama"), profile="2x-rtx3060"), backend="ollama"
    )
    specs = launch_specs(plan, LayoutConfig(backend="ollama"))
    assert {s.backend for s in specs} == {"ollama"}
    for s in specs:
        assert s.env["OLLAMA_HOST"] == f"127.0.0.1:{s.port}" and len({m.ctx_tokens for m in s.models}) == 1


def test_names() -> None:
    p = _placement("x", "ollama/qwen3:8b", (3,))
    assert (device_id(p), model_alias(p)) == ("gpu3", "qwen3:8b")
    assert model_alias(replace(p, model="/models/Coder-7B.Q4_K_M.gguf")) == "Coder-7B.Q4_K_M"
