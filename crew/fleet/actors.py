"""One Ray actor per planned server, on its node, holding one `gpu:<UUID>` resource per card it is pinned to.

The actor starts the server exactly as a local run does (`process.start` on the LaunchSpec, whose env pins
CUDA_VISIBLE_DEVICES by UUID). It asks Ray for no GPUs (`num_gpus=0`): with none assigned Ray leaves
CUDA_VISIBLE_DEVICES alone (RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO unset), and the spec's env is laid over the
actor's for the child anyway, so our pinning is what the server sees. The server stays on the node's
loopback; requests reach it through the actor (`forward`, `stream`), which is what crew/fleet/relay.py calls.
A watchdog thread restarts a server that dies, on the same port.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crew.fleet.probe import gpu_resource
from crew.serving import llamacpp_residency, process
from crew.serving.llamacpp_residency import ServerResidency
from crew.serving.spec import LLAMA_CPP_PYTHON, LaunchSpec

CHUNK_BYTES = 64 * 1024
WATCH_S = 0.5


@dataclass(frozen=True)
class Started:
    """What the actor reports once its server answers."""

    server_id: str
    node_id: str
    port: int              # on the node's loopback (the planned one, or the next free one there)
    pid: int
    pinning: str           # the CUDA_VISIBLE_DEVICES the server was started with
    ready_s: float
    residency: ServerResidency
    log_path: str = ""     # the server's log, on its node


def pinned_uuids(spec: LaunchSpec) -> tuple[str, ...]:
    """The cards a spec claims: its UUIDs, or for a simulated spec the pinning it would have had."""
    if spec.gpu_uuids:
        return spec.gpu_uuids
    pinning = spec.planned_pinning or spec.env.get("CUDA_VISIBLE_DEVICES", "")
    return tuple(u for u in pinning.split(",") if u and not u.isdigit())


def for_this_node(spec: LaunchSpec, python: str, port: int) -> LaunchSpec:
    """The planner's spec as this node runs it: this node's python (the plan names the planner's venv) and a
    port free here."""
    program = (python, *spec.program[1:]) if spec.engine == LLAMA_CPP_PYTHON else spec.program
    return replace(spec, program=program, port=port)


class ServerActor:
    """Lives on the server's node; never imported by a local run."""

    def __init__(self, spec: LaunchSpec, state_dir: str = "") -> None:
        import ray

        self.node_id: str = ray.get_runtime_context().get_node_id()
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="localcrew-fleet-"))
        self.spec = for_this_node(spec, sys.executable, process.free_port(spec.port))
        self.server: process.RunningServer | None = None
        self.restarts = 0
        self.lock = threading.Lock()
        self.stopping = False

    def start(self, timeout_s: float = 120.0) -> Started:
        with self.lock:
            self.server = process.start(self.spec, self.state_dir)
            ready_s = process.wait_healthy(self.server, timeout_s=timeout_s)
        threading.Thread(target=self._watch, name="localcrew-watchdog", daemon=True).start()
        log = self.server.log_path.read_text(encoding="utf-8", errors="replace")
        return Started(server_id=self.spec.server_id, node_id=self.node_id, port=self.spec.port,
                       pid=self.server.pid, pinning=self.spec.env.get("CUDA_VISIBLE_DEVICES", ""),
                       ready_s=ready_s, residency=llamacpp_residency.check(self.spec, log, self.spec.planned_bytes),
                       log_path=str(self.server.log_path))

    def _watch(self) -> None:
        while not self.stopping:
            time.sleep(WATCH_S)
            self.ensure()

    def ensure(self) -> bool:
        """Restart the server if it died; True when it answers (now or after the restart)."""
        with self.lock:
            if self.stopping or self.server is None:
                return False
            if self.server.alive():
                return True
            process.release(self.server)
            self.server = process.start(self.spec, self.state_dir)
            self.restarts += 1
            process.wait_healthy(self.server)
            return True

    def status(self) -> dict[str, int]:
        return {"pid": self.server.pid if self.server else 0, "restarts": self.restarts, "port": self.spec.port}

    def _open(self, method: str, path: str, body: bytes) -> tuple[http.client.HTTPConnection,
                                                                   http.client.HTTPResponse]:
        """Send one request; a server that died just before (not yet restarted) is restarted and asked
        once more."""
        for attempt in (1, 2):
            self.ensure()
            conn = http.client.HTTPConnection(self.spec.bind_address, self.spec.port, timeout=600)
            try:
                conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
                return conn, conn.getresponse()
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                conn.close()
                if attempt == 2:
                    raise
                self._await_exit()
        raise AssertionError("unreachable")

    def _await_exit(self, timeout_s: float = 5.0) -> None:
        """A killed server refuses connections a moment before it can be reaped: wait for its exit so
        `ensure` sees it dead."""
        if self.server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.process.wait(timeout=timeout_s)

    def forward(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        """One request to the server, whole answer back: (status, content type, body)."""
        conn, resp = self._open(method, path, body)
        try:
            return resp.status, resp.getheader("Content-Type", "application/json"), resp.read()
        finally:
            conn.close()

    def stream(self, path: str, body: bytes) -> Iterator[bytes | tuple[int, str]]:
        """A streamed request (SSE): first (status, content type), then each chunk as the server sends it."""
        conn, resp = self._open("POST", path, body)
        try:
            yield resp.status, resp.getheader("Content-Type", "text/event-stream")
            while chunk := resp.read1(CHUNK_BYTES):
                yield chunk
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            if self.server is not None:
                process.stop(self.server)
                process.release(self.server)


def place(spec: LaunchSpec, node_id: str, *, state_dir: str = "") -> Any:
    """The actor for `spec` on `node_id` (hard affinity), holding one resource per pinned card: a second
    server for the same card waits instead of sharing it. Call `.start.remote()` on what this returns."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor_cls: Any = ray.remote(ServerActor)
    return actor_cls.options(
        num_cpus=0, num_gpus=0, max_concurrency=16, max_restarts=0,
        resources={gpu_resource(u): 1 for u in pinned_uuids(spec)},
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote(spec, state_dir)
