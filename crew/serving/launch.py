"""From a plan to launch specs: one server per GPU (or GPU group), one for the CPU. Pure: starts nothing.

All agents on a GPU share its server; agents on the same model there share one ServedModel (one copy of
the weights), given the largest context any of them asked for. Pinning is by environment:
CUDA_DEVICE_ORDER=PCI_BUS_ID so indices mean what nvidia-smi shows, CUDA_VISIBLE_DEVICES=<UUID> (the index
when no UUID is known) so the server sees only its GPU; the CPU server sees none. Ports count up from the
layout's base_port per host, in server order. A simulated plan (`simulate: true`) gets CPU servers whose
labels carry the pinning they would have had.
"""

from __future__ import annotations

from pathlib import Path

from crew.config import LayoutConfig
from crew.planner.plan import AgentPlacement, Plan
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec

LOCAL = "local"


def server_id(a: AgentPlacement) -> str:
    """'gpu1', 'gpu0+1' for a split, 'cpu'; another host's servers carry its name: 'ws2-gpu0'."""
    if a.placement == "cpu":
        return "cpu"
    sid = "gpu" + "+".join(str(i) for i in a.gpu_indices)
    return sid if a.host == LOCAL else f"{a.host}-{sid}"


def model_alias(a: AgentPlacement) -> str:
    """The name agents address the model by: the tag without `ollama/`, a file's stem, or `embedded`."""
    ref = a.model.strip()
    for prefix in ("ollama/", "ollama_chat/"):
        if ref.lower().startswith(prefix):
            return ref[len(prefix) :]
    return Path(ref).stem if ref.lower().endswith(".gguf") else ref


def launch_specs(plan: Plan, layout: LayoutConfig) -> list[LaunchSpec]:
    servers: dict[str, list[AgentPlacement]] = {}
    for a in sorted((a for a in plan.agents if a.placement != "api"), key=_server_order):
        servers.setdefault(server_id(a), []).append(a)
    uuids = {(g.host, g.index): g.uuid for g in plan.gpus}
    next_port: dict[str, int] = {}
    specs = []
    for sid, agents in servers.items():
        first = agents[0]
        host = first.host
        port = next_port.get(host, layout.base_port)
        next_port[host] = port + 1
        on_gpu = first.placement in ("gpu", "split")
        pinning = ",".join(uuids.get((host, i)) or str(i) for i in first.gpu_indices) if on_gpu else ""
        models, unresolved = _models(agents, gpu=on_gpu and not plan.simulated)
        # Simulated GPUs keep exactly the planned pinning (a CPU build of llama.cpp ignores it), so the
        # multi-GPU path — env, ports, one server per GPU — is what runs here and in CI.
        env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": pinning}
        if plan.simulated and on_gpu:
            env["LOCALCREW_SIMULATED"] = "1"
        labels = {"host": host, "agents": ",".join(a.name for a in agents)}
        if unresolved:
            labels["unresolved_models"] = ",".join(unresolved)
        if plan.simulated and on_gpu:
            labels["planned_cuda_visible_devices"] = pinning
        gpu_uuids = tuple(u for i in first.gpu_indices if (u := uuids.get((host, i)))) if on_gpu else ()
        if plan.backend == "ollama":
            spec = _ollama(sid, models, port, pinning if on_gpu else None, first, plan.simulated)
        else:
            spec = llamacpp_spec(
                sid,
                models,
                port,
                env=env,
                gpu_uuids=() if plan.simulated else gpu_uuids,
                simulated=plan.simulated and on_gpu,
            )
        specs.append(_with_labels(spec, labels))
    return specs


def agent_endpoints(plan: Plan, specs: list[LaunchSpec]) -> dict[str, tuple[LaunchSpec, ServedModel]]:
    """Each agent (except API ones) → its server and the model it asks that server for."""
    by_id = {s.server_id: s for s in specs}
    out = {}
    for a in plan.agents:
        if a.placement == "api":
            continue
        spec = by_id[server_id(a)]
        alias = model_alias(a)
        out[a.name] = (spec, next(m for m in spec.models if m.alias == alias))
    return out


def _server_order(a: AgentPlacement) -> tuple[int, str, tuple[int, ...], str]:
    # local GPUs first in index order, other hosts after, the CPU server last
    rank = 2 if a.placement == "cpu" else (0 if a.host == LOCAL else 1)
    return (rank, a.host, a.gpu_indices, a.name)


def _models(agents: list[AgentPlacement], *, gpu: bool) -> tuple[tuple[ServedModel, ...], list[str]]:
    by_alias: dict[str, list[AgentPlacement]] = {}
    for a in agents:
        by_alias.setdefault(model_alias(a), []).append(a)
    models, unresolved = [], []
    for alias, group in by_alias.items():
        a = group[0]
        if a.model_path is None:
            unresolved.append(alias)  # a catalog model: the serving layer pulls or finds its file first
        models.append(
            ServedModel(
                alias=alias,
                path=a.model_path or a.model,
                ctx_tokens=max(g.num_ctx for g in group),
                n_gpu_layers=-1 if gpu else 0,
                flash_attn=a.flash_attn,
                kv_type=a.kv_type,
                batch=a.batch,
                ubatch=a.ubatch,
                tensor_split=a.tensor_split if gpu else (),
                n_threads=0 if gpu else -1,
            )
        )
    return tuple(models), unresolved


def _ollama(
    sid: str,
    models: tuple[ServedModel, ...],
    port: int,
    pinning: str | None,
    first: AgentPlacement,
    simulated: bool,
) -> LaunchSpec:
    from dataclasses import replace

    from crew.serving.ollama import ollama_spec

    # Ollama has one context length per server: every model on it gets the largest one asked for.
    ctx = max(m.ctx_tokens for m in models)
    same = tuple(replace(m, ctx_tokens=ctx) for m in models)
    return ollama_spec(
        sid,
        same,
        port,
        gpu_uuid=pinning,
        num_parallel=1,
        kv_type=first.kv_type,
        flash_attn=first.flash_attn,
        models_dir=None,
        simulated=simulated,
    )


def _with_labels(spec: LaunchSpec, labels: dict[str, str]) -> LaunchSpec:
    from dataclasses import replace

    return replace(spec, labels={**spec.labels, **labels})
