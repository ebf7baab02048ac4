"""From a plan to running endpoints: which servers to start, and each agent's LLM bound to its server."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from crew.config import ProjectConfig
from crew.errors import ConfigError, ServingError
from crew.serving.process import free_port
from crew.serving.spec import LaunchSpec, ServedModel
from crew.units import LOCAL

if TYPE_CHECKING:
    from crew.planner.plan import Plan


def prepare_specs(plan: Plan, project: ProjectConfig) -> list[LaunchSpec]:
    """Launch specs with model files checked and each local server on a free loopback port. Servers on other
    hosts are started on their nodes of the layout's Ray cluster (crew/fleet/remote.py), which pick their
    port there; without a cluster there is nothing to start them on."""
    from crew.serving.launch import launch_specs

    specs, taken = [], set()
    from crew.models.server_binary import find_server_binary

    all_specs = launch_specs(plan, project.layout, server_binary=find_server_binary())
    remote = sorted({s.machine for s in all_specs} - {LOCAL})
    if remote and project.layout.cluster is None:
        raise ServingError(f"the plan places agents on other hosts ({', '.join(remote)})",
                           where=project.layout.path,
                           fix="name the Ray cluster those hosts are nodes of (`cluster: auto` or the head's "
                               "host:port, docs/fleet.md), or declare only local GPUs")
    for spec in all_specs:
        if spec.machine != LOCAL:  # its model file is checked where it runs (the actor's start fails there)
            specs.append(spec)
            continue
        if spec.backend == "ollama":
            from crew.serving.ollama import require_binary

            require_binary()  # says how to install Ollama, or to switch `backend: llamacpp`
        for model in spec.models if spec.backend == "llamacpp" else ():
            if not Path(model.path).is_file():
                raise ServingError(f"model file for {model.alias!r} not found: {model.path}",
                                   where=f"server {spec.server_id}",
                                   fix="`plan-gpus pull` fetches every planned model; or give a .gguf path "
                                       "in agents.yaml")
        port = free_port(spec.port, taken=taken)
        taken.add(port)
        specs.append(spec if port == spec.port else replace(spec, port=port))
    return specs


class Where(NamedTuple):
    """Where one agent runs, in the report's words."""

    model: str
    device: str  # "gpu 1", "cpu", "api"
    server: str  # "gpu1 :11501", or the API endpoint's name


@dataclass
class Bound:
    llms: dict[str, Any]                       # agent -> its CrewAI LLM
    where: dict[str, Where]                    # agent -> where it runs, for the report
    binding: dict[str, tuple[str, str]]        # agent -> (server_id, model alias) for failover


def bind_agents(plan: Plan, specs: list[LaunchSpec], project: ProjectConfig) -> Bound:
    """Each agent's LLM pointed at its own server."""
    from crew.serving.launch import agent_endpoints
    from crew.serving.llm import served_llm

    endpoints = agent_endpoints(plan, specs)
    bound = Bound(llms={}, where={}, binding={})
    llms, where = bound.llms, bound.where
    for placement in plan.agents:
        if placement.placement == "api":
            llms[placement.name] = _api_llm(project, placement.name)
            where[placement.name] = Where(placement.model, "api", project.agents[placement.name].api or "?")
            continue
        spec, model = endpoints[placement.name]
        device = ("cpu" if placement.placement == "cpu"
                  else "gpu " + "+".join(str(i) for i in placement.gpu_indices))
        if spec.simulated:
            device += " (simulated)"
        if spec.machine != LOCAL:
            device += f" on {spec.machine}"
        llms[placement.name] = served_llm(agent=placement.name, base_url=spec.base_url, model_alias=model.alias,
                                          ctx_tokens=model.ctx_tokens, device=device, server_slots=spec.slots,
                                          max_tokens=project.agents[placement.name].max_tokens,
                                          seed=project.tasks.workflow.seed,
                                          temperature=project.tasks.workflow.temperature,
                                          task_max_tokens={t.name: t.max_tokens for t in project.tasks.tasks.values()
                                                           if t.agent == placement.name and t.max_tokens},
                                          task_stop={t.name: list(t.stop) for t in project.tasks.tasks.values()
                                                     if t.agent == placement.name and t.stop})
        where[placement.name] = Where(placement.model, device, f"{spec.server_id} :{spec.port}")
        bound.binding[placement.name] = (spec.server_id, model.alias)
    return bound


def cpu_fallback_model(project: ProjectConfig, agent: str) -> ServedModel | None:
    """The agent's CPU model as a server model (used when its GPU server is gone for good)."""
    from crew.models.resolve import resolve_footprint
    from crew.planner.build import NO_CPU

    cfg = project.agents[agent]
    if cfg.cpu_model.lower() in NO_CPU:
        return None
    fp = resolve_footprint(cfg.cpu_model)
    if fp.path is None:
        return None
    ctx = min(cfg.num_ctx, fp.n_ctx_train or cfg.num_ctx)
    return ServedModel(alias=f"{fp.name}-cpu", path=fp.path, ctx_tokens=ctx, n_gpu_layers=0)


def _api_llm(project: ProjectConfig, agent: str) -> Any:
    """The declared OpenAI-compatible endpoint, reached through litellm so any provider works."""
    from crewai import LLM

    name = project.agents[agent].api
    endpoint = project.layout.api_endpoints[name or ""]
    key = os.environ.get(endpoint.api_key_env or "", "") if endpoint.api_key_env else ""
    if endpoint.api_key_env and not key:
        raise ConfigError(f"environment variable {endpoint.api_key_env} is not set",
                          where=f"gpu_layout.yaml: api_endpoints.{name}.api_key_env",
                          fix=f"export {endpoint.api_key_env}=... before the run")
    return LLM(model=endpoint.model, base_url=endpoint.base_url, api_key=key or None, is_litellm=True)


def api_fallback(project: ProjectConfig, agent: str) -> tuple[str, str, str] | None:
    """The agent's declared OpenAI-compatible endpoint for failover: (base_url, model, api key)."""
    name = project.agents[agent].api
    if name is None:
        return None
    endpoint = project.layout.api_endpoints[name]
    if endpoint.base_url is None:
        return None
    key = os.environ.get(endpoint.api_key_env, "") if endpoint.api_key_env else ""
    return endpoint.base_url, endpoint.model.split("/", 1)[-1], key or "sk-none"
