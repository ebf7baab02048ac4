"""What the run needs of a server on another machine of a fleet, as the supervisor sees it.

A plan with a cluster (`gpu_layout.yaml: cluster`) places some servers on other nodes. The supervisor
starts those through a `RemoteLauncher` (crew/fleet/remote.py: a Ray actor on the node, a loopback relay
here) and handles what it gets back through `RemoteServer` — so crew/serving never imports Ray, and the
router's failover order works on remote servers as on local ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from crew.serving.llamacpp_residency import ServerResidency
from crew.serving.spec import LaunchSpec
from crew.units import LOCAL


class RemoteServer(Protocol):
    # The planned spec at the port agents here reach it on (the relay's, on 127.0.0.1); `machine` is its host.
    spec: LaunchSpec
    # What the node's residency check found once it answered (None before).
    residency: ServerResidency | None

    @property
    def pid(self) -> int: ...             # on its node

    @property
    def log_path(self) -> Path: ...       # on its node

    def wait_ready(self, timeout_s: float) -> float: ...  # seconds to ready; ServingError when it fails

    def alive(self) -> bool: ...          # its node, its actor and its server are up

    def answers(self) -> bool: ...

    def ensure(self) -> bool: ...         # its actor restarts a dead server; False: node or actor gone

    def stop(self) -> None: ...


# The error type a fleet relay answers with when the remote server's actor or node failed (crew/fleet/relay.py);
# for the agent's LLM it is a server it cannot reach (crew/serving/llm.py).
RELAY_ERROR = "relay_error"


class RemoteLauncher(Protocol):
    def launch(self, spec: LaunchSpec) -> RemoteServer:
        """Place the server on its host's node and start it there (no waiting)."""
        ...


def is_remote(spec: LaunchSpec) -> bool:
    """A server that runs on another machine of the plan (not this one)."""
    return spec.machine != LOCAL
