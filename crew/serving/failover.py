"""When a server dies mid-run: restart it once; if it dies again, move its agents to a fallback.

The router is called by an agent's LLM when a request cannot connect. It answers whether to retry, after
either restarting the server (same address) or rebinding the agent, in this order of preference: a live
server that already hosts its model; its model on another GPU with room (crew.serving.relocate); its CPU
model on a CPU server started on demand; its declared API endpoint. Every decision is shown and logged;
the interrupted LLM call is then retried, so the task in flight continues and nothing written is touched.

After a crash that the same binary would repeat (crew.hardware.crash: a fault signal, or an error exit that is
not memory), no fallback runs the same binary on the same device: it would crash too, and a user waited
minutes for three crashes before. When nothing else is left, the router raises `RunAborted` carrying the
one-line `ServerCrashError`: CrewAI catches `Exception` and retries a task, so only a BaseException ends the
run at once; the workflow writes the report and turns it back into the error (exit 2).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crew.errors import RunAborted, ServerCrashError, ServingError
from crew.hardware.crash import ServerExit
from crew.journal.events import ServingFault
from crew.journal.log import RunLog
from crew.serving.process import RunningServer, Supervisor, crash_error, free_port, stop
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
    # set once a crash ended the run: every later call (CrewAI retries the task) ends the same way at once
    fatal: ServerCrashError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, llm: Any, exc: BaseException) -> bool:
        agent = str(getattr(llm, "agent_name", ""))
        if self.fatal is not None:
            raise RunAborted(self.fatal)
        if agent not in self.binding:
            return False
        with self._lock:
            server_id, alias = self.binding[agent]
            if self._follow_binding(llm, server_id, alias):
                return True
            crash = self.supervisor.note_exit(server_id)
            try:
                if self.supervisor.ensure_alive(server_id):
                    how = f" after it {_ended(crash)}" if crash is not None else ""
                    self._note(ServingFault(
                        text=f"server {server_id} was down{how} and has been restarted; {agent} retries its request",
                        agent=agent, server=server_id, action="restarted",
                        pid=self.supervisor.servers[server_id].pid, **_exit_fields(crash)))
                    return True
            except ServingError as err:
                self._note(ServingFault(text=f"server {server_id} could not be restarted: {err.what}", agent=agent,
                                        server=server_id, action="restart_failed"))
            crash = self.supervisor.note_exit(server_id) or crash
            fatal = crash is not None and crash.same_binary_will_fail
            try:
                target = self._fallback(agent, server_id, alias, avoid_same_binary=fatal)
            except ServingError as err:
                self._note(ServingFault(text=f"CPU fallback for {agent} failed: {err.what}", agent=agent,
                                        action="cpu_failed"))
                target = None
            if target is None:
                if self.api_fallback(agent) is None and crash is not None:
                    self._abort(server_id, crash)
                return self._to_api(llm, agent, server_id)
            spec, model = target
            self._rebind(llm, agent, spec, model)
            return True

    def _follow_binding(self, llm: Any, server_id: str, alias: str) -> bool:
        """An LLM object still pointing at a server its agent has already moved away from — a sibling asked
        beside others (crew/run/attempts.py: next_drafts) whose twin failed over first, or the original after a
        sibling did — follows the agent to its live server instead of restarting or moving it again. Without
        this, the second of two samples in flight when a server died retried the dead address three times and
        ended the run (tests/test_simulated_gpus.py, the verdict's attempts after the kill at `document`)."""
        server = self.supervisor.servers.get(server_id)
        if server is None or not server.alive() or str(getattr(llm, "base_url", "")) == f"{server.spec.base_url}/v1":
            return False
        model = next((m for m in server.spec.models if m.alias == alias), None)
        if model is None:
            return False
        llm.rebind(base_url=server.spec.base_url, model_alias=model.alias, ctx_tokens=model.ctx_tokens,
                   device=_device(server.spec) + " (failover)")
        return True

    def gone(self, llm: Any, exc: BaseException) -> None:
        """The agent's request failed again after every retry the router allowed: end the run in one line."""
        agent = str(getattr(llm, "agent_name", ""))
        if self.fatal is not None:
            raise RunAborted(self.fatal)
        with self._lock:
            server_id = self.binding.get(agent, ("", ""))[0]
            crash = self.supervisor.note_exit(server_id) if server_id in self.supervisor.servers else None
            if crash is not None:
                self._abort(server_id, crash)
            self.fatal = ServerCrashError(
                f"{agent}'s model server could not be reached after a restart and failover ({exc})",
                where=f"server {server_id or '?'}",
                fix="read the servers' logs in the run folder's servers/; then `localcrew resume RUN_DIR`")
            self._note(ServingFault(text=f"run stopped: {self.fatal.what}", agent=agent, server=server_id,
                                    action="unreachable"))
            raise RunAborted(self.fatal)

    def _abort(self, server_id: str, crash: ServerExit) -> None:
        """No fallback is left for a server that ended: one line, logged, and the run ends (RunAborted)."""
        server = self.supervisor.servers[server_id]
        times = len(self.supervisor.exits.get(server_id, [])) or 1
        log_path = server.log_path if isinstance(server, RunningServer) else server.spec.log_name
        self.fatal = crash_error(server.spec, crash, log_path, times=times)  # type: ignore[arg-type]
        self._note(ServingFault(text=f"run stopped: {self.fatal.what}", server=server_id, action="crashed",
                                times=times, **_exit_fields(crash)))
        raise RunAborted(self.fatal)

    def _same_binary_same_device(self, dead: str, spec: LaunchSpec) -> bool:
        """Would `spec` run the dead server's binary on the dead server's device (the CPU, or its GPUs)?"""
        gone = self.supervisor.servers.get(dead)
        if gone is None:
            return False
        return (spec.backend == gone.spec.backend and spec.program[:1] == gone.spec.program[:1]
                and spec.machine == gone.spec.machine and _device_key(spec) == _device_key(gone.spec))

    def _fallback(self, agent: str, dead: str, alias: str, *,
                  avoid_same_binary: bool = False) -> tuple[LaunchSpec, ServedModel] | None:
        # 1. another live server that already hosts the same model (shares its weights, costs no memory)
        for sid, server in self.supervisor.servers.items():
            if sid != dead and server.alive():
                if avoid_same_binary and self._same_binary_same_device(dead, server.spec):
                    continue
                for m in server.spec.models:
                    if m.alias == alias:
                        return server.spec, m
        # 2. the same model on another GPU with room (per the plan, and NVML when it can read the card)
        moved = self._to_gpu(agent, dead, alias)
        if moved is not None:
            return moved
        # 3. the agent's CPU model, on a CPU server started now (one for all agents that fail over)
        model = self.cpu_fallback(agent)
        if model is None or dead == "cpu-fallback":  # the fallback itself died (and was restarted once)
            return None
        cpu = self.supervisor.servers.get("cpu-fallback")
        if cpu is None or not cpu.alive():
            env = {"CUDA_VISIBLE_DEVICES": ""}
            if avoid_same_binary and self._same_binary_same_device(dead, llamacpp_spec("cpu-fallback", (model,), 0,
                                                                                       env=env)):
                return None  # the build that just crashed on this CPU would crash here too
            taken = {s.spec.port for s in self.supervisor.servers.values()}
            spec = llamacpp_spec("cpu-fallback", (model,), free_port(max(taken, default=11500) + 1, taken=taken),
                                 env=env)
            self.say(f"[yellow]starting a CPU fallback server for {agent} ({model.alias})[/]")
            self.supervisor.start_all([spec], on_ready=self.on_started)
            cpu = self.supervisor.servers["cpu-fallback"]
        elif avoid_same_binary and self._same_binary_same_device(dead, cpu.spec):
            return None
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
            self._note(ServingFault(text=f"moving {agent} to {spec.server_id} failed: {err.what}", agent=agent,
                                    server=spec.server_id, action="gpu_failed"))
            return None
        return spec, spec.models[0]

    def _to_api(self, llm: Any, agent: str, dead: str) -> bool:
        api = self.api_fallback(agent)
        if api is None:
            self._note(ServingFault(text=f"no fallback for {agent}: its server {dead} is gone", agent=agent,
                                    server=dead, action="no_fallback"))
            return False
        base_url, model, key = api
        llm.rebind(base_url=base_url.removesuffix("/v1"), model_alias=model, ctx_tokens=llm.server_ctx_tokens,
                   device="api (failover)", api_key=key)
        self.binding[agent] = ("api", model)
        self._note(ServingFault(text=f"[bold yellow]failover[/]: {agent} moved from {dead} to its API endpoint "
                                     f"({model}); the interrupted request is retried",
                                agent=agent, server="api", action="failover", previous=dead))
        return True

    def _rebind(self, llm: Any, agent: str, spec: LaunchSpec, model: ServedModel) -> None:
        old = self.binding[agent]
        self.binding[agent] = (spec.server_id, model.alias)
        llm.rebind(base_url=spec.base_url, model_alias=model.alias, ctx_tokens=model.ctx_tokens,
                   device=_device(spec) + " (failover)")
        self._note(ServingFault(text=f"[bold yellow]failover[/]: {agent} moved from {old[0]} to {spec.server_id} "
                                     f"({model.alias}); the interrupted request is retried",
                                agent=agent, server=spec.server_id, action="failover", previous=old[0]))

    def _note(self, fault: ServingFault) -> None:
        self.events.append(fault.text)
        self.say(f"[yellow]{fault.text}[/]")
        self.log.record(fault)  # the words too: a resumed run's report lists it


def _device_key(spec: LaunchSpec) -> tuple[int, ...]:
    """The device a server computes on: its GPUs, or () for the CPU (a simulated GPU server runs there)."""
    return () if spec.simulated else spec.gpu_indices


def _ended(crash: ServerExit) -> str:
    return f"crashed ({crash.how()})" if crash.faulted else f"ended ({crash.how()})"


def _exit_fields(crash: ServerExit | None) -> dict[str, Any]:
    """The run log's record of how a server ended."""
    if crash is None:
        return {}
    return {"returncode": crash.returncode, "signal": crash.signal_name, "library": crash.library,
            "faulted": crash.faulted}


def _device(spec: LaunchSpec) -> str:
    """The report's device words for a server: "cpu", "gpu 1", "gpu 1 (simulated)"."""
    if not spec.on_gpu:
        return "cpu"
    return ("gpu " + "+".join(map(str, spec.gpu_indices)) + (" (simulated)" if spec.simulated else "")
            + (f" on {spec.machine}" if spec.machine != LOCAL else ""))
