"""GPUs and exclusion rules declared in gpu_layout.yaml, from typed entries to snapshots.

crew/config/layout.py has checked every field of each entry (`DeclaredGpu`, `DeclaredExclusion`). Here:
`host` defaults to `local`, `index` to the GPU's position among its host's GPUs, bandwidth and compute
capability to the card table; `count` repeats an entry (a fleet's four identical cards); and what only
shows across entries (a UUID or a host's index twice, more than 256 GPUs) names file and key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crew.errors import ConfigError
from crew.hardware.cards import lookup
from crew.hardware.types import ExclusionRule, GpuInfo
from crew.units import GB, GIB, LOCAL

if TYPE_CHECKING:
    from crew.hardware.types import DeclaredExclusion, DeclaredGpu

MAX_GPUS = 256  # in one layout (the planner takes ~1 s for 256)


def parse_gpus(entries: tuple[DeclaredGpu, ...], *, file: str = "gpu_layout.yaml") -> tuple[GpuInfo, ...]:
    gpus: list[GpuInfo] = []
    seen: dict[tuple[str, int], str] = {}
    uuids: dict[str, str] = {}
    for pos, e in enumerate(entries):
        key = f"gpus[{pos}]"
        host = e.host or LOCAL
        if len(gpus) + e.count > MAX_GPUS:
            raise ConfigError(
                f"more than {MAX_GPUS} GPUs declared in all",
                where=f"{file}: {key}.count" if e.count > 1 else f"{file}: gpus",
                fix=f"declare at most {MAX_GPUS} GPUs; plan a larger fleet host by host",
            )
        if e.uuid is not None:
            if e.uuid.lower() in uuids:
                raise ConfigError(
                    f"UUID {e.uuid} is declared twice (also {uuids[e.uuid.lower()]})",
                    where=f"{file}: {key}.uuid",
                    fix="give each GPU its own UUID",
                )
            uuids[e.uuid.lower()] = key
        total = round(e.memory_gib * GIB)
        card = lookup(e.name, total)
        bandwidth = round(e.bandwidth_gbs * GB) if e.bandwidth_gbs else (card.bandwidth_bytes_per_s if card else None)
        source = "declared" if e.bandwidth_gbs else ("table" if card else "unknown")
        cc = e.compute_capability or (card.compute_capability if card else None)
        for k in range(e.count):
            index = e.index + k if e.index is not None else sum(g.host == host for g in gpus)
            if (host, index) in seen:
                raise ConfigError(
                    f"GPU {index} of host {host!r} is declared twice (also {seen[host, index]})",
                    where=f"{file}: {key}.index",
                    fix="give each GPU of a host its own index",
                )
            seen[host, index] = key
            gpus.append(
                GpuInfo(
                    index=index,
                    name=e.name,
                    total_bytes=total,
                    host=host,
                    uuid=e.uuid,
                    pci_bus_id=e.pci_bus_id,
                    compute_capability=cc,
                    bandwidth_bytes_per_s=bandwidth,
                    bandwidth_source=source,
                )
            )
    return tuple(gpus)


def parse_exclusions(
    entries: tuple[DeclaredExclusion, ...], *, file: str = "gpu_layout.yaml"
) -> tuple[ExclusionRule, ...]:
    """The rules as the inventory applies them (`file` is kept for callers; each entry is checked already)."""
    return tuple(
        ExclusionRule(
            reason=e.reason,
            name=e.name,
            uuid=e.uuid,
            index=e.index,
            compute_capability=e.compute_capability,
            host=e.host,
        )
        for e in entries
    )
