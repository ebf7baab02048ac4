"""Failover to another GPU: when an agent's GPU server is gone for good, its model on a GPU that has room.

"Room" is the planner's own arithmetic — the GPU's usable bytes less what the plan put there and what
earlier failovers moved there — and, when NVML can read the card, also its free memory right now (the plan
cannot know about a process that started since). The agent keeps its model, context and KV type: moving it
to the CPU model would change the model under a task in flight. The new server is a new process, so the
agent's whole estimate counts, CUDA context included.

`gpu_with_room` and `relocation_spec` are pure; `GpuRelocator` is the adapter the router calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from crew.planner.plan import AgentPlacement, GpuPlan, Plan
from crew.serving.launch import device_id
from crew.serving.process import free_port
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec
from crew.units import LOCAL


def may_move_to(plan: Plan, agent: AgentPlacement, g: GpuPlan) -> bool:
    """Without a cluster a run starts servers on this machine only: its other GPUs. With one (a fleet),
    any node's GPU — but not the machine the agent left when that is another one: the router asks only
    once its server is gone for good, and on another machine that means its node or actor is lost."""
    if g.excluded or (g.host == agent.host and g.index in agent.gpu_indices):
        return False
    if plan.source != "cluster":
        return g.host == agent.host == LOCAL
    return g.host == LOCAL or g.host != agent.host


def gpu_with_room(plan: Plan, agent: AgentPlacement, moved_in_bytes: Mapping[tuple[str, int], int],
                  free_bytes: Callable[[int], int | None]) -> GpuPlan | None:
    """The GPU with the most room that fits `agent`'s model alone, among those it may move to."""
    need = agent.estimate.total_bytes
    best: tuple[int, GpuPlan] | None = None
    for g in plan.gpus:
        if not may_move_to(plan, agent, g):
            continue
        room = g.usable_bytes - g.planned_bytes - moved_in_bytes.get((g.host, g.index), 0)
        live = free_bytes(g.index) if g.host == LOCAL else None  # NVML reads this machine's cards only
        if live is not None:
            room = min(room, live - g.reserve_bytes)
        if room >= need and (best is None or room > best[0]):
            best = (room, g)
    return best[1] if best else None


def relocation_spec(plan: Plan, agent: AgentPlacement, model: ServedModel, gpu: GpuPlan, port: int) -> LaunchSpec:
    """One llama.cpp server for the moved agent, pinned to `gpu` exactly as the planned servers are."""
    pinning = gpu.uuid or str(gpu.index)
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": pinning}
    if plan.simulated:
        env["LOCALCREW_SIMULATED"] = "1"
    where = f"gpu{gpu.index}" if gpu.host == LOCAL else f"{gpu.host}-gpu{gpu.index}"
    spec = llamacpp_spec(f"{where}-failover-{agent.name}", (model,), port, env=env,
                         gpu_uuids=() if plan.simulated or gpu.uuid is None else (gpu.uuid,),
                         simulated=plan.simulated)
    return replace(spec, machine=gpu.host, agents=(agent.name,), agent_models=(model.alias,), gpu_indices=(gpu.index,),
                   planned_bytes=agent.estimate.total_bytes, planned_pinning=pinning if plan.simulated else "",
                   failover_from=device_id(agent))


@dataclass
class GpuRelocator:
    """Called by the router with (agent, its model, ports in use); a spec to start, or None."""

    plan: Plan
    free_bytes: Callable[[int], int | None] = lambda index: None  # NVML's free bytes; None: cannot read
    moved_in_bytes: dict[tuple[str, int], int] = field(default_factory=dict)  # (host, index) -> bytes

    def __call__(self, agent_name: str, model: ServedModel, taken_ports: set[int]) -> LaunchSpec | None:
        if self.plan.backend == "ollama":  # an Ollama server is not ours to re-pin per model
            return None
        agent = self.plan.agent(agent_name)
        if agent.placement not in ("gpu", "split"):
            return None
        gpu = gpu_with_room(self.plan, agent, self.moved_in_bytes, self.free_bytes)
        if gpu is None:
            return None
        # counted before the start: a server that then fails to load still held the memory for a while
        key = (gpu.host, gpu.index)
        self.moved_in_bytes[key] = self.moved_in_bytes.get(key, 0) + agent.estimate.total_bytes
        after = max(taken_ports, default=11500) + 1
        # a server on another node picks its port there: nothing to lease here
        port = free_port(after, taken=taken_ports) if gpu.host == LOCAL else after
        return relocation_spec(self.plan, agent, model, gpu, port)
