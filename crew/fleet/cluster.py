"""Connecting to the Ray cluster a fleet runs on: the one place that calls `ray.init`.

Ray's ports run arbitrary code for whoever reaches them, so token authentication is asked for whenever the
installed Ray has it (RAY_AUTH_MODE=token; the token comes from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
~/.ray/auth_token, as Ray reads it). A user who sets RAY_AUTH_MODE themselves is obeyed.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from typing import Any

from crew.errors import ServingError, UsageError

AUTH_MODE_ENV = "RAY_AUTH_MODE"
NAMESPACE = "localcrew"


@dataclass(frozen=True)
class ClusterInfo:
    address: str          # what the layout named ("auto" or host:port)
    ray_version: str
    token_auth: bool      # RAY_AUTH_MODE=token was in force when we connected
    started: bool         # `auto` found no cluster and started one on this machine
    nodes: int            # alive nodes when we connected
    connect_s: float


def token_auth_supported() -> bool:
    """Whether this Ray ships token authentication (ray/_private/authentication; 2.60.0 is locked here)."""
    return importlib.util.find_spec("ray._private.authentication.authentication_token_setup") is not None


def auth_mode() -> bool:
    """Ask for token auth unless the user chose a mode; True when it is in force."""
    if not token_auth_supported():
        return False
    mode = os.environ.setdefault(AUTH_MODE_ENV, "token")
    # Ray reads its config once, at import; re-read it so this process sees the mode (what Ray's own
    # `_enable_token_auth` does). Nodes started from here inherit the variable.
    from ray._raylet import Config  # type: ignore[attr-defined]

    Config.initialize("")
    return mode.lower() == "token"


def auth_in_force() -> bool:
    return token_auth_supported() and os.environ.get(AUTH_MODE_ENV, "").lower() == "token"


def connect(address: str) -> ClusterInfo:
    """Attach to the cluster at `address` (host:port of its GCS, or `auto`: the one running on this machine,
    else a new single-node one here)."""
    if not address.strip():
        raise UsageError("the cluster address is empty", where="gpu_layout.yaml: cluster",
                         fix="give the head's host:port (e.g. 10.0.0.2:6379) or `auto`")
    import ray

    if ray.is_initialized():  # planned in this process already (plan_project), or a test's own connection
        return ClusterInfo(address=address, ray_version=ray.__version__, token_auth=auth_in_force(),
                           started=False, nodes=len(alive_nodes()), connect_s=0.0)
    token = auth_mode()
    t0 = time.monotonic()
    started = False
    try:
        if address == "auto":
            try:
                ray.init(address="auto", namespace=NAMESPACE, log_to_driver=False)
            except ConnectionError:
                ray.init(namespace=NAMESPACE, log_to_driver=False)
                started = True
        else:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise ServingError(f"cannot join the Ray cluster at {address}: {exc}", where="gpu_layout.yaml: cluster",
                           fix="start the head with `ray start --head` on a private network; with token auth, "
                               "copy its token (`ray get-auth-token` there) into RAY_AUTH_TOKEN here") from None
    nodes = len(alive_nodes())
    return ClusterInfo(address=address, ray_version=ray.__version__, token_auth=token, started=started,
                       nodes=nodes, connect_s=time.monotonic() - t0)


def alive_nodes() -> list[dict[str, Any]]:
    """Ray's table of the nodes that are up (NodeID, NodeManagerAddress, Resources, ...)."""
    import ray

    table: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [n for n in table if n.get("Alive")]


def this_node() -> str:
    """The id of the node this process is attached to: its GPUs are `local` in plans."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


def disconnect() -> None:
    import ray

    ray.shutdown()
