"""What GPUs each node of the cluster has: one Ray task per node, pinned to it, reading NVML there.

A node's GPUs are claimed by servers through custom resources, one per card, named `gpu:<UUID>` (declare
them with `ray start --resources '{"gpu:GPU-…": 1}'`), so two servers can never hold one card. A node where
NVML finds no GPU (this repository's CI, a CPU-only test cluster) reports the cards its resources declare
instead: name "declared by Ray resource", memory from an optional `gpu_gib:<UUID>` resource (its amount is
the card's GiB), else 0 — say so rather than guess.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from crew.fleet.cluster import alive_nodes
from crew.hardware.types import GpuInfo
from crew.units import GIB, LOCAL

GPU_PREFIX = "gpu:"
GIB_PREFIX = "gpu_gib:"
DECLARED_NAME = "declared by Ray resource"


def gpu_resource(uuid: str) -> str:
    """The custom resource a server holds for the card with this UUID."""
    return GPU_PREFIX + uuid


@dataclass(frozen=True)
class NodeGpus:
    node_id: str
    ip: str
    hostname: str
    gpus: tuple[GpuInfo, ...]
    source: str        # "nvml" | "ray resources" | "none"
    note: str = ""     # why NVML was not used, or which detected cards no resource declares


def gpus_from_resources(resources: Mapping[str, float], host: str) -> tuple[GpuInfo, ...]:
    """The cards a node declares as `gpu:<UUID>` resources, in UUID order."""
    uuids = sorted(k[len(GPU_PREFIX):] for k in resources if k.startswith(GPU_PREFIX))
    return tuple(GpuInfo(index=i, name=DECLARED_NAME, total_bytes=int(resources.get(GIB_PREFIX + u, 0) * GIB),
                         host=host, uuid=u, bandwidth_source="unknown")
                 for i, u in enumerate(uuids))


def node_gpus(node_id: str, ip: str, hostname: str, resources: Mapping[str, float],
              detected: tuple[GpuInfo, ...], detect_note: str) -> NodeGpus:
    """NVML's cards when it found any (with a note naming those no resource lets a server claim), else the
    declared ones."""
    if detected:
        declared = {k[len(GPU_PREFIX):] for k in resources if k.startswith(GPU_PREFIX)}
        unclaimable = [g.uuid or f"GPU {g.index}" for g in detected if g.uuid not in declared]
        note = (f"no `gpu:<UUID>` resource for {', '.join(unclaimable)}: no server can be placed there "
                "(ray start --resources)") if unclaimable else ""
        return NodeGpus(node_id, ip, hostname, tuple(replace(g, host=hostname) for g in detected), "nvml", note)
    gpus = gpus_from_resources(resources, hostname)
    return NodeGpus(node_id, ip, hostname, gpus, "ray resources" if gpus else "none", detect_note)


def read_this_node(node_id: str, ip: str, hostname: str, resources: dict[str, float]) -> NodeGpus:
    """Runs on the node (a Ray task): NVML through our adapter, else the node's declared resources."""
    from crew.hardware.nvml import PynvmlProvider, detect

    found = detect(PynvmlProvider())
    return node_gpus(node_id, ip, hostname, resources, found.gpus, found.note)


def host_names(nodes: Sequence[tuple[str, str]], local_node_id: str = "") -> dict[str, str]:
    """(node id, machine name) pairs -> the host name plans use: `local` for the node this process runs on
    (its servers start here, as without a cluster), else the machine's name, made unique with the node id's
    head when several nodes share one machine (a local test cluster)."""
    seen = Counter(name for _, name in nodes)
    return {nid: LOCAL if nid == local_node_id else name if seen[name] == 1 else f"{name}-{nid[:6]}"
            for nid, name in nodes}


def _named(alive: list[dict[str, Any]]) -> dict[str, str]:
    from crew.fleet.cluster import this_node

    return host_names([(n["NodeID"], str(n.get("NodeManagerHostname", ""))) for n in alive], this_node())


def node_of_host() -> dict[str, str]:
    """host name (as plans name it) -> node id, for every alive node. Needs `cluster.connect` first."""
    return {host: nid for nid, host in _named(alive_nodes()).items()}


def probe(*, timeout_s: float = 60.0) -> list[NodeGpus]:
    """Every alive node's GPUs, named as plans will name them. Needs `cluster.connect` first."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task: Any = ray.remote(num_cpus=0)(read_this_node)
    alive = alive_nodes()
    names = _named(alive)
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(n["NodeID"], n.get("NodeManagerAddress", ""), names[n["NodeID"]], dict(n.get("Resources", {})))
            for n in alive]
    nodes: list[NodeGpus] = ray.get(refs, timeout=timeout_s)
    return nodes


def cluster_gpus(address: str) -> tuple[tuple[GpuInfo, ...], tuple[str, ...]]:
    """The cluster's cards for the planner's inventory, and a note per node that has something to say.
    Connects (once per process) and stays connected: a run places its servers on the same cluster."""
    from crew.fleet.cluster import connect

    connect(address)
    return inventory_gpus(probe())


def inventory_gpus(nodes: list[NodeGpus]) -> tuple[tuple[GpuInfo, ...], tuple[str, ...]]:
    """Every node's cards, this machine's first, then by host name; a note per node that has one."""
    ordered = sorted(nodes, key=lambda n: (n.hostname != LOCAL, n.hostname))
    return (tuple(g for n in ordered for g in n.gpus),
            tuple(f"{n.hostname}: {n.note}" for n in ordered if n.note))
