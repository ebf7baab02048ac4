"""From a plan to launch specs: one server per loaded model, pinned to its GPU (or GPU group). Pure.

One process per (device, model) for llama.cpp: llama-cpp-python's multi-model server keeps ONE model loaded
at a time, so agents alternating between two models on one server reloaded them on every hand-off
(measured: load count 1 → 4 for A, B, A) and the plan's memory figures described a state that never
existed. Each process carries its own CUDA context, which the planner counts per model. Agents on the same
model and device share its server (one copy of the weights), given the largest context any of them asked
for. Ollama keeps several models resident in one server (OLLAMA_MAX_LOADED_MODELS, keep_alive -1; each
model runs in its own runner process), so an Ollama plan gets one server per device.

Pinning is by environment: CUDA_DEVICE_ORDER=PCI_BUS_ID so indices mean what nvidia-smi shows,
CUDA_VISIBLE_DEVICES=<UUID> (the index when no UUID is known) so the server sees only its GPU; the CPU
server sees none. Ports count up from the layout's base_port per host, in server order. A simulated plan
(`simulate: true`) gets CPU servers that carry the pinning they would have had.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from crew.config import LayoutConfig
from crew.planner.plan import AgentPlacement, Plan
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec
from crew.units import LOCAL


def device_id(a: AgentPlacement) -> str:
    """'gpu1', 'gpu0+1' for a split, 'cpu'; another host's devices carry its name: 'ws2-gpu0'."""
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


def _slug(alias: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", alias).strip("-")[:48] or "model"


def _groups(plan: Plan) -> dict[str, list[AgentPlacement]]:
    """Server id → its agents. A device with one model keeps the device's id ('gpu0'); with several, each
    model's server is 'gpu1-<model>'. (Ollama: one server per device, every model in it.)"""
    by_device: dict[str, list[AgentPlacement]] = {}
    for a in sorted((a for a in plan.agents if a.placement != "api"), key=_server_order):
        by_device.setdefault(device_id(a), []).append(a)
    if plan.backend == "ollama":
        return by_device
    out: dict[str, list[AgentPlacement]] = {}
    for dev, agents in by_device.items():
        aliases = list(dict.fromkeys(model_alias(a) for a in agents))
        for alias in aliases:
            sid = dev if len(aliases) == 1 else f"{dev}-{_slug(alias)}"
            out[sid] = [a for a in agents if model_alias(a) == alias]
    return out


def launch_specs(plan: Plan, layout: LayoutConfig, *, server_binary: str | None = None) -> list[LaunchSpec]:
    """The plan's servers. llama.cpp plans run `server_binary` (llama-server, with a slot per request the
    plan counted) when given, else llama-cpp-python's server."""
    from dataclasses import replace

    uuids = {(g.host, g.index): g.uuid for g in plan.gpus}
    next_port: dict[str, int] = {}
    specs = []
    groups = _groups(plan)
    shared = simulated_threads(plan, groups, os.cpu_count() or 1)
    for sid, agents in groups.items():
        first = agents[0]
        host = first.host
        port = next_port.get(host, layout.base_port)
        next_port[host] = port + 1
        on_gpu = first.placement in ("gpu", "split")
        pinning = ",".join(uuids.get((host, i)) or str(i) for i in first.gpu_indices) if on_gpu else ""
        models, unresolved = _models(agents, gpu=on_gpu and not plan.simulated,
                                     threads=shared if plan.simulated and on_gpu else -1)
        # Simulated GPUs keep exactly the planned pinning (a CPU build of llama.cpp ignores it), so the
        # multi-GPU path — env, ports, one server per model and GPU — is what runs here and in CI.
        env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": pinning}
        if plan.simulated and on_gpu:
            env["LOCALCREW_SIMULATED"] = "1"
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
                server_binary=server_binary,
            )
        specs.append(replace(
            spec, machine=host, gpu_indices=first.gpu_indices if on_gpu else (),
            planned_bytes=planned_bytes(agents), agents=tuple(a.name for a in agents),
            agent_models=tuple(model_alias(a) for a in agents),
            unresolved_models=tuple(unresolved), planned_pinning=pinning if plan.simulated and on_gpu else ""))
    return specs


def planned_bytes(agents: list[AgentPlacement]) -> int:
    """What the plan counts for one server: per model, the largest whole estimate among its agents plus
    every other agent's own KV cache (the solver's formula, server by server)."""
    total = 0
    for alias in dict.fromkeys(model_alias(a) for a in agents):
        same = [a for a in agents if model_alias(a) == alias]
        # one server gives every slot the largest context any of its agents asked for: an agent that asked
        # for less is counted at that context too (a KV cache grows in proportion to it)
        ctx = max(a.num_ctx for a in same)
        group = sorted(same, key=lambda a: -a.estimate.total_bytes)
        total += group[0].estimate.total_bytes + _grown(group[0], ctx) + sum(
            a.estimate.kv_cache_bytes + _grown(a, ctx) + a.estimate.output_bytes for a in group[1:])
        total += max((a.draft_bytes for a in same), default=0)  # one draft model per server
    return total


def _grown(a: AgentPlacement, ctx: int) -> int:
    """The KV bytes an agent's slots gain when its server's context is `ctx` instead of its own."""
    return a.estimate.kv_cache_bytes * (ctx - a.num_ctx) // a.num_ctx if a.num_ctx else 0


def agent_endpoints(plan: Plan, specs: list[LaunchSpec]) -> dict[str, tuple[LaunchSpec, ServedModel]]:
    """Each agent (except API ones) → its server and the model it asks that server for."""
    out = {}
    for spec in specs:  # the binding made in launch_specs, carried by each spec
        for agent in spec.agents:
            out[agent] = (spec, spec.model_of(agent))
    return {a.name: out[a.name] for a in plan.agents if a.name in out}


def _server_order(a: AgentPlacement) -> tuple[int, str, tuple[int, ...], str]:
    # local GPUs first in index order, other hosts after, the CPU server last
    rank = 2 if a.placement == "cpu" else (0 if a.host == LOCAL else 1)
    return (rank, a.host, a.gpu_indices, a.name)


def simulated_threads(plan: Plan, groups: dict[str, list[AgentPlacement]], cores: int) -> int:
    """Decode threads of each simulated GPU's server: this machine's cores shared among them. Each taking
    every core made two busy servers run four threads on two cores, and llama.cpp's threads spin while they
    wait for each other: the simulated 4-GPU run's implement took 268 s against ~25 s on one server."""
    if not plan.simulated:
        return -1
    n = sum(1 for agents in groups.values() if agents[0].placement in ("gpu", "split"))
    return max(1, cores // max(1, n))


def _models(agents: list[AgentPlacement], *, gpu: bool, threads: int = -1) -> tuple[tuple[ServedModel, ...], list[str]]:
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
                n_threads=0 if gpu else threads,
                slots=sum(g.slots for g in group),
                draft_path=next((g.draft_path for g in group if g.draft_path), "") or "",
                ngram=any(g.ngram for g in group),  # a draft model wins over it (spec.llama_server_args)
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

    # Ollama has one context length per server: every model on it gets the largest one asked for; and one
    # OLLAMA_NUM_PARALLEL, each model's slots: the most any model there needs.
    ctx = max(m.ctx_tokens for m in models)
    same = tuple(replace(m, ctx_tokens=ctx) for m in models)
    return ollama_spec(
        sid,
        same,
        port,
        gpu_uuid=pinning,
        num_parallel=max(m.slots for m in models),
        kv_type=first.kv_type,
        flash_attn=first.flash_attn,
        models_dir=None,
        simulated=simulated,
    )
