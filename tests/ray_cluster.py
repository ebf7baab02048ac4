"""A real local multi-node Ray cluster for the fleet tests (markers `slow` and `ray`): every node on this
machine, each declaring one card as custom resources (`gpu:<UUID>` and `gpu_gib:<UUID>` = 12), token auth
on with a token of the test's own (nothing written to ~/.ray). The first node is the head, and this process
attaches to it (ray.cluster_utils: "the driver is connected to the first node that is added")."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

from crew.fleet import cluster, probe

# Node loss is noticed through the GCS's health checks of each raylet (default: 5 misses 3 s apart); the
# test that removes a node wants it noticed within a few seconds.
# One token per test process: Ray caches the token it loaded, so a second cluster in the same process (two
# test modules) must be started with the same one.
TOKEN = secrets.token_hex(32)
FAST_NODE_DEATH = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
                   "RAY_health_check_failure_threshold": "3"}


def card(uuid: str) -> dict[str, float]:
    return {probe.gpu_resource(uuid): 1, f"{probe.GIB_PREFIX}{uuid}": 12}


@contextlib.contextmanager
def local_cluster(cards: list[str], *, env: Mapping[str, str] | None = None) -> Iterator[tuple[Any, float]]:
    """(the Cluster, seconds until it was up and joined); `cards[0]` on the head, one more node per card."""
    from ray.cluster_utils import Cluster

    settings = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, **(env or {})}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    c = None
    try:
        assert cluster.auth_mode()  # this process (which imported ray already) sees it too
        t0 = time.monotonic()
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": card(cards[0])})
        for uuid in cards[1:]:
            c.add_node(num_cpus=1, resources=card(uuid))
        c.wait_for_nodes()
        info = cluster.connect(c.address)
        started_s = time.monotonic() - t0
        assert info.nodes == len(cards) and info.token_auth
        print(f"\ncluster of {len(cards)} nodes up and joined in {started_s:.1f} s (join {info.connect_s:.1f} s, "
              f"Ray {info.ray_version}, token auth)")
        yield c, started_s
    finally:
        cluster.disconnect()
        if c is not None:
            c.shutdown()  # type: ignore[no-untyped-call]
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
