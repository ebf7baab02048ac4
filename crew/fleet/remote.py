"""Servers on other nodes of a fleet, as the run's supervisor sees them (crew/serving/remote.py's protocols).

`Launcher.launch(spec)` places a `ServerActor` on the node of the spec's host (actors.place: hard affinity,
one `gpu:<UUID>` resource per card), asks it to start the server there, and opens a `Relay` on this
machine's loopback; agents are bound to the relay's URL. What the actor reports (pid, port and the
residency figures read from the server's log on its node) comes back through `wait_ready`. A node or an
actor that is gone makes `ensure` and `alive` False, which the router takes as "gone for good": its
failover order follows (crew/serving/failover.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crew.errors import ServingError
from crew.fleet.actors import Started, place
from crew.fleet.relay import Relay
from crew.serving.llamacpp_residency import ServerResidency
from crew.serving.spec import LaunchSpec

# A call to an actor whose node just vanished can wait until Ray declares the node dead; these bound it.
STATUS_TIMEOUT_S = 10.0
ENSURE_TIMEOUT_S = 150.0  # the actor may be restarting its server (a model load)
STOP_TIMEOUT_S = 30.0


@dataclass
class FleetServer:
    spec: LaunchSpec              # the planned spec at the relay's port: what agents here are bound to
    node_id: str
    actor: Any
    relay: Relay
    pending: Any                  # the actor's start(), until wait_ready has its answer
    started: Started | None = None
    residency: ServerResidency | None = None

    @property
    def pid(self) -> int:
        return self.started.pid if self.started else 0

    @property
    def log_path(self) -> Path:
        return Path(self.started.log_path if self.started else "")

    def wait_ready(self, timeout_s: float) -> float:
        import ray

        try:
            started: Started = ray.get(self.pending, timeout=timeout_s)
        except Exception as exc:  # the server failed there (its ServingError, wrapped), the node left, a timeout
            self.stop()
            raise ServingError(f"server did not start on {self.spec.machine}: {_first_line(exc)}",
                               where=f"server {self.spec.server_id} (node {self.node_id[:12]})",
                               fix="check that the node has the model file (`plan-gpus pull` there) and "
                                   "llama-cpp-python in the same venv path") from None
        self.started, self.residency = started, started.residency
        return started.ready_s

    def _call(self, method: str, timeout_s: float) -> Any:
        import ray

        return ray.get(getattr(self.actor, method).remote(), timeout=timeout_s)

    def alive(self) -> bool:
        try:
            return bool(self._call("status", STATUS_TIMEOUT_S)["pid"])
        except Exception:  # ActorDiedError, a node gone, a timeout: not alive, whichever
            return False

    def answers(self) -> bool:
        return self.alive()

    def ensure(self) -> bool:
        try:
            return bool(self._call("ensure", ENSURE_TIMEOUT_S))
        except Exception:  # the actor or its node is gone: the router fails over
            return False

    def stop(self) -> None:
        import ray

        self.relay.close()
        with contextlib.suppress(Exception):  # a node that is gone has nothing left to stop
            self._call("stop", STOP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            ray.kill(self.actor)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # a task error carries the remote traceback; its last line names the error
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


@dataclass
class Launcher:
    """Starts a run's remote servers on the cluster it is connected to (cluster.connect)."""

    state_dir: str = ""  # where servers on the nodes write logs ("": a temporary folder on each node)

    def launch(self, spec: LaunchSpec) -> FleetServer:
        from crew.fleet.probe import node_of_host

        node = node_of_host().get(spec.machine)
        if node is None:
            raise ServingError(f"no node of the cluster is host {spec.machine} now",
                               where=f"server {spec.server_id}",
                               fix="plan again (`plan-gpus`): the cluster's nodes changed since the plan was made")
        actor = place(spec, node, state_dir=self.state_dir)
        pending = actor.start.remote()
        relay = Relay(spec.server_id, actor)
        return FleetServer(spec=replace(spec, port=relay.endpoint.port), node_id=node, actor=actor,
                           relay=relay, pending=pending)
