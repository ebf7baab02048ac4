"""The servers of one plan, for as long as they are needed: `ServerSession`.

Used by `localcrew run` / `crewai run` (servers for exactly the crew's work) and by `plan-gpus up` (servers
left running). It owns what both need and what used to be written twice: reuse of recorded servers
(`plan-gpus up`, `keep_warm`), the supervisor that starts the rest pinned, llama.cpp's residency check per
server as it comes up, Ollama's pull / warm-up / residency, the record of kept servers in
.localcrew/servers.json, and one NVML session for the free memory failover asks for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crew.config import ProjectConfig
from crew.errors import LocalcrewError, ServingError
from crew.journal.records import ResidencyChecked, ResidencyWarning, ServerReady, ServerReused, ServersReady
from crew.serving import registry

if TYPE_CHECKING:
    from crew.journal.events import Event
    from crew.journal.log import RunLog
    from crew.planner.plan import Plan
    from crew.serving.process import RunningServer, Supervisor
    from crew.serving.remote import RemoteLauncher, RemoteServer
    from crew.serving.spec import LaunchSpec

Say = Callable[[str], None]


class ServerSession:
    """Reuse what is recorded and matches, start the rest, check every model sits where planned."""

    def __init__(self, project: ProjectConfig, plan: Plan, *, state_dir: Path, keep: bool, say: Say,
                 log: RunLog | None = None, timeout_s: float = 120.0, launcher: RemoteLauncher | None = None,
                 make_launcher: Callable[[], RemoteLauncher] | None = None) -> None:
        self.project, self.plan, self.say, self.log = project, plan, say, log
        # servers on other nodes: `launcher`, else one `make_launcher` builds (the run passes crew/fleet's; a
        # layer above serving, so serving never imports it)
        self.launcher, self.make_launcher = launcher, make_launcher
        self.state_dir, self.keep, self.timeout_s = state_dir, keep, timeout_s
        self.specs: list[LaunchSpec] = []   # every server of the plan, reused ones at their recorded port
        self.started: list[LaunchSpec] = []  # the ones this session started
        self.notes: list[str] = []           # residency warnings (on_spill: warn), for the report
        self.records: dict[str, registry.Record] = {}
        self.supervisor: Supervisor | None = None
        self._nvml: Any = None

    @contextlib.contextmanager
    def running(self) -> Iterator[ServerSession]:
        """Servers up inside the block; the ones started here stop on leaving it (unless `keep`), on
        return, error, Ctrl-C and SIGTERM alike."""
        from crew.serving.bind import prepare_specs
        from crew.serving.process import Supervisor
        from crew.serving.remote import is_remote

        specs = prepare_specs(self.plan, self.project)
        remote = [s for s in specs if is_remote(s)]  # started on their nodes (crew/fleet), never reused
        self.records = registry.load(self.project.root)
        reused, self.started = registry.partition([s for s in specs if not is_remote(s)], self.records,
                                                  say=self.say)
        self.started += remote
        for spec in reused:
            self.say(f"  server {spec.server_id} reused (already running on {spec.base_url}, "
                     "same pinning and models)")
            self._log(ServerReused(server=spec.server_id, port=spec.port))
        self.supervisor = Supervisor(self.state_dir, keep=self.keep, remote=self._launcher() if remote else None)
        began = time.monotonic()
        with self.supervisor.running(self.started, on_ready=self.ready, timeout_s=self.timeout_s):
            # a remote server is reached through its relay here: agents are bound to that port
            self.specs = reused + [self.supervisor.servers[s.server_id].spec for s in self.started]
            try:
                ollama = [s for s in self.specs if s.backend == "ollama"]
                if ollama:
                    self.notes += self._prepare_ollama(ollama)
                self._log(ServersReady(seconds=round(time.monotonic() - began, 2)))
                yield self
            finally:
                if self.keep:  # a server restarted meanwhile has a new pid; one dead for good is dropped
                    self.remember()

    def _launcher(self) -> RemoteLauncher | None:
        """What starts the plan's servers on other nodes: actors on the layout's Ray cluster."""
        if self.project.layout.cluster is None:
            return None
        if self.keep:
            self.say("  keep_warm: servers on other nodes stop with the run (their actors end with it)")
        if self.launcher is None:
            if self.make_launcher is None:
                raise ServingError("the plan has servers on other nodes and nothing here can start them",
                                   where=f"{self.project.layout.path}: cluster",
                                   fix="start the run with `localcrew run` (it starts them on the cluster)")
            self.launcher = self.make_launcher()
        return self.launcher

    def ready(self, server: RunningServer | RemoteServer, took: float) -> None:
        """A server answered its health check (at start, or started later by failover)."""
        from crew.serving.process import RunningServer
        from crew.serving.remote import is_remote

        spec = server.spec
        models = ", ".join(m.alias for m in spec.models)
        sim = " (simulated)" if spec.simulated else ""
        where = f"on {spec.machine}, relayed to {spec.base_url}" if is_remote(spec) else f"on {spec.base_url}"
        self.say(f"  server {spec.server_id}{sim} ready {where} in {took:.1f} s — {models}")
        remote = is_remote(spec)
        self._log(ServerReady(server=spec.server_id, pid=server.pid, port=spec.port,
                              models=tuple(m.alias for m in spec.models), seconds=round(took, 2),
                              host=spec.machine if remote else None,
                              node_log=str(server.log_path) if remote else None))
        if spec.backend == "llamacpp":
            self._residency(server)
        if not isinstance(server, RunningServer):  # not kept: its actor ends with the run
            return
        if self.keep and any(s.server_id == spec.server_id for s in self.started):
            # recorded as each comes up, so a later failure loses none (a failover server is not kept:
            # the supervisor stops it with the run)
            self.records[spec.server_id] = registry.record_of(spec, server.pid, server.log_path,
                                                              getattr(server, "identity", None))
            registry.save(self.project.root, self.records)

    def remember(self) -> None:
        """Record the kept servers as they are now, for reuse and `plan-gpus down`."""
        assert self.supervisor is not None
        remember_kept(self.supervisor, [s.server_id for s in self.started], self.records, self.project.root)

    def nvml(self) -> Any:
        """One NVML session for the run: the sampler's readings and failover's free memory."""
        if self._nvml is None:
            from crew.monitor.live import PynvmlLive

            self._nvml = PynvmlLive()
        return self._nvml

    def free_bytes(self, index: int) -> int | None:
        """Free bytes on a detected local GPU now, for failover; None where NVML cannot say (declared,
        simulated or profile GPUs: the plan's own arithmetic is then all there is)."""
        if self.plan.simulated or self.plan.source not in ("detected", "cluster"):
            return None
        from crew.hardware.nvml import NvmlUnavailable

        try:
            nvml = self.nvml()
            nvml.open()
            return int(nvml.memory(index)[1])
        except (NvmlUnavailable, LocalcrewError):  # unreadable now: the plan's arithmetic decides alone
            return None

    def _log(self, event: Event) -> None:
        if self.log is not None:
            self.log.record(event)

    def _residency(self, server: RunningServer | RemoteServer) -> None:
        """Planned vs what the llama.cpp server reports it allocated; a GPU server with nothing on the GPU
        fails (or is a warning with `on_spill: warn`). A remote server's figures were read on its node."""
        from crew.serving.llamacpp_residency import check, describe
        from crew.serving.process import RunningServer

        spec = server.spec
        if isinstance(server, RunningServer):
            r = check(spec, server.log_path.read_text(encoding="utf-8", errors="replace"), spec.planned_bytes)
        elif server.residency is not None:
            r = server.residency
        else:
            return
        self.say(f"  residency {describe(r, on_gpu=spec.on_gpu)}")
        self._log(ResidencyChecked(server=spec.server_id, planned_bytes=r.planned_bytes,
                                   reported_bytes=r.reported_bytes, device_bytes=r.device_bytes,
                                   host_model_bytes=r.host_model_bytes, simulated=r.simulated))
        if spec.on_gpu and not r.simulated and r.device_bytes == 0 and self.project.layout.on_spill == "fail":
            raise ServingError("the model is not on the GPU (the server allocated nothing there)",
                               where=f"server {spec.server_id} (log {server.log_path})",
                               fix="install a CUDA build of llama-cpp-python, or set `on_spill: warn` in "
                                   "gpu_layout.yaml")

    def _prepare_ollama(self, specs: list[LaunchSpec]) -> list[str]:
        """Pull what is missing (progress per layer), load every model once, check none spilled or was
        evicted (the planned set must stay resident together)."""
        from rich.progress import Progress

        from crew.serving.ollama import prepare_servers

        on_spill = "warn" if self.project.layout.on_spill == "warn" else "fail"
        with Progress(transient=True) as progress:
            warnings = prepare_servers(specs, progress=progress, on_spill=on_spill)
        for w in warnings:
            self.say(f"[yellow]{w}[/]")
            self._log(ResidencyWarning(text=w))
        return warnings


def remember_kept(supervisor: Supervisor, server_ids: list[str], records: dict[str, registry.Record],
                  root: Path) -> None:
    """The kept servers as they are now: a restarted one with its new pid, one dead for good dropped."""
    from crew.serving.process import RunningServer

    for sid in server_ids:
        srv = supervisor.servers.get(sid)
        if isinstance(srv, RunningServer) and srv.alive():
            records[sid] = registry.record_of(srv.spec, srv.pid, srv.log_path)
        else:
            records.pop(sid, None)
    registry.save(root, records)
