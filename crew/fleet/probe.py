"""What GPUs each node of the cluster has: one Ray task per node, pinned to it, reading NVML there.

A node's GPUs are claimed by servers through custom resources, one per card, named `gpu:<UUID>` (declare
them with `ray start --resources '{"gpu:GPU-…": 1}'`), so two servers can never hold one card. A node where
NVML finds no GPU (this repository's CI, a CPU-only test cluster) reports the cards its resources declare
instead: name "declared by Ray resource", memory from an optional `gpu_gib:<UUID>` resource (its amount is
the card's GiB), else 0 — say so rather than guess.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from crew.fleet.cluster import alive_nodes
from crew.hardware.types import GpuInfo
from crew.units import GIB

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


def read_this_node(node_id: str, ip: str, resources: dict[str, float]) -> NodeGpus:
    """Runs on the node (a Ray task): NVML through our adapter, else the node's declared resources."""
    import socket

    from crew.hardware.nvml import PynvmlProvider, detect

    found = detect(PynvmlProvider())
    return node_gpus(node_id, ip, socket.gethostname(), resources, found.gpus, found.note)


def host_names(nodes: list[NodeGpus]) -> dict[str, str]:
    """node id -> the host name plans use: the machine's name, made unique with the node id's head when
    several nodes share one machine (a local test cluster)."""
    seen = Counter(n.hostname for n in nodes)
    return {n.node_id: n.hostname if seen[n.hostname] == 1 else f"{n.hostname}-{n.node_id[:6]}" for n in nodes}


def probe(*, timeout_s: float = 60.0) -> list[NodeGpus]:
    """Every alive node's GPUs, named as plans will name them. Needs `cluster.connect` first."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task: Any = ray.remote(num_cpus=0)(read_this_node)
    alive = alive_nodes()
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(n["NodeID"], n.get("NodeManagerAddress", ""), dict(n.get("Resources", {})))
            for n in alive]
    nodes: list[NodeGpus] = ray.get(refs, timeout=timeout_s)
    names = host_names(nodes)
    return [replace(n, hostname=names[n.node_id], gpus=tuple(replace(g, host=names[n.node_id]) for g in n.gpus))
            for n in nodes]
