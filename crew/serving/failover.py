"""When a server dies mid-run: restart it once; if it dies again, move its agents to a fallback.

The router is called by an agent's LLM when a request cannot connect. It answers whether to retry, after
either restarting the server (same address) or rebinding the agent, in this order of preference: a live
server that already hosts its model; its model on another GPU with room (crew.serving.relocate); its CPU
model on a CPU server started on demand; its declared API endpoint. Every decision is shown and logged;
the interrupted LLM call is then retried, so the task in flight continues and nothing written is touched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crew.errors import ServingError
from crew.run.runlog import RunLog
from crew.serving.process import Supervisor, free_port, stop
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec
from crew.units import LOCAL


@dataclass
class Router:
    supervisor: Supervisor
    log: RunLog
    say: Callable[[str], None]
    # agent -> (server_id, model alias)
    binding: dict[str, tuple[str, str]]
    # model to run on the CPU when an agent's server is gone for good
    cpu_fallback: Callable[[str], ServedModel | None]
    # last resort: the agent's declared OpenAI-compatible endpoint as (base_url, model, api_key), if any
    api_fallback: Callable[[str], tuple[str, str, str] | None] = lambda agent: None
    # the agent's own model on another GPU with room: (agent, model, ports in use) -> a spec to start
    gpu_fallback: Callable[[str, ServedModel, set[int]], LaunchSpec | None] = lambda agent, model, ports: None
    # called with each server the router starts, once healthy (the run's residency check)
    on_started: Callable[[Any, float], None] | None = None
    events: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, llm: Any, exc: BaseException) -> bool:
        agent = str(getattr(llm, "agent_name", ""))
        if agent not in self.binding:
            return False
        with self._lock:
            server_id, alias = self.binding[agent]
            try:
                if self.supervisor.ensure_alive(server_id):
                    self._note(f"server {server_id} was down and has been restarted; {agent} retries its request",
                               agent=agent, server=server_id, action="restarted",
                               pid=self.supervisor.servers[server_id].pid)
                    return True
            except ServingError as err:
                self._note(f"server {server_id} could not be restarted: {err.what}", agent=agent,
                           server=server_id, action="restart_failed")
            try:
                target = self._fallback(agent, server_id, alias)
            except ServingError as err:
                self._note(f"CPU fallback for {agent} failed: {err.what}", agent=agent, action="cpu_failed")
                target = None
            if target is None:
                return self._to_api(llm, agent, server_id)
            spec, model = target
            self._rebind(llm, agent, spec, model)
            return True

    def _fallback(self, agent: str, dead: str, alias: str) -> tuple[LaunchSpec, ServedModel] | None:
        # 1. another live server that already hosts the same model (shares its weights, costs no memory)
        for sid, server in self.supervisor.servers.items():
            if sid != dead and server.alive():
                for m in server.spec.models:
                    if m.alias == alias:
                        return server.spec, m
        # 2. the same model on another GPU with room (per the plan, and NVML when it can read the card)
        moved = self._to_gpu(agent, dead, alias)
        if moved is not None:
            return moved
        # 3. the agent's CPU model, on a CPU server started now (one for all agents that fail over)
        model = self.cpu_fallback(agent)
        if model is None:
            return None
        cpu = self.supervisor.servers.get("cpu-fallback")
        if cpu is None or not cpu.alive():
            taken = {s.spec.port for s in self.supervisor.servers.values()}
            spec = llamacpp_spec("cpu-fallback", (model,), free_port(max(taken, default=11500) + 1, taken=taken),
                                 env={"CUDA_VISIBLE_DEVICES": ""})
            self.say(f"[yellow]starting a CPU fallback server for {agent} ({model.alias})[/]")
            self.supervisor.start_all([spec], on_ready=self.on_started)
            cpu = self.supervisor.servers["cpu-fallback"]
        return cpu.spec, cpu.spec.models[0]

    def _to_gpu(self, agent: str, dead: str, alias: str) -> tuple[LaunchSpec, ServedModel] | None:
        server = self.supervisor.servers.get(dead)
        model = next((m for m in server.spec.models if m.alias == alias), None) if server else None
        if model is None:
            return None
        spec = self.gpu_fallback(agent, model, {s.spec.port for s in self.supervisor.servers.values()})
        if spec is None:
            return None
        host = f" of {spec.machine}" if spec.machine != LOCAL else ""
        self.say(f"[yellow]starting {agent}'s model {alias} on GPU {'+'.join(map(str, spec.gpu_indices))}{host}, "
                 f"which has room for it ({spec.server_id})[/]")
        try:
            self.supervisor.start_all([spec], on_ready=self.on_started)
        except ServingError as err:  # e.g. it did not fit after all: stop it, and try the CPU next
            if spec.server_id in self.supervisor.servers:
                stop(self.supervisor.servers.pop(spec.server_id))
            self._note(f"moving {agent} to {spec.server_id} failed: {err.what}", agent=agent,
                       server=spec.server_id, action="gpu_failed")
            return None
        return spec, spec.models[0]

    def _to_api(self, llm: Any, agent: str, dead: str) -> bool:
        api = self.api_fallback(agent)
        if api is None:
            self._note(f"no fallback for {agent}: its server {dead} is gone", agent=agent, server=dead,
                       action="no_fallback")
            return False
        base_url, model, key = api
        llm.rebind(base_url=base_url.removesuffix("/v1"), model_alias=model, ctx_tokens=llm.server_ctx_tokens,
                   device="api (failover)", api_key=key)
        self.binding[agent] = ("api", model)
        self._note(f"[bold yellow]failover[/]: {agent} moved from {dead} to its API endpoint ({model}); "
                   "the interrupted request is retried", agent=agent, server="api", action="failover",
                   previous=dead)
        return True

    def _rebind(self, llm: Any, agent: str, spec: LaunchSpec, model: ServedModel) -> None:
        old = self.binding[agent]
        self.binding[agent] = (spec.server_id, model.alias)
        llm.rebind(base_url=spec.base_url, model_alias=model.alias, ctx_tokens=model.ctx_tokens,
                   device=_device(spec) + " (failover)")
        self._note(f"[bold yellow]failover[/]: {agent} moved from {old[0]} to {spec.server_id} ({model.alias}); "
                   "the interrupted request is retried", agent=agent, server=spec.server_id, action="failover",
                   previous=old[0])

    def _note(self, text: str, **fields: Any) -> None:
        self.events.append(text)
        self.say(f"[yellow]{text}[/]")
        self.log.append("serving_fault", text=text, **fields)  # the words too: a resumed run's report lists it


def _device(spec: LaunchSpec) -> str:
    """The report's device words for a server: "cpu", "gpu 1", "gpu 1 (simulated)"."""
    if not spec.on_gpu:
        return "cpu"
    return ("gpu " + "+".join(map(str, spec.gpu_indices)) + (" (simulated)" if spec.simulated else "")
            + (f" on {spec.machine}" if spec.machine != LOCAL else ""))
