"""The GPU inventory as a plain snapshot (types.py): what each GPU is, which are excluded and why, and RAM.

Three sources produce the same `Inventory`: NVML detection (nvml.py), GPUs declared in gpu_layout.yaml
(declared.py) and built-in rig profiles (profiles.py). `load_inventory` picks one from the layout; the
planner reads only the snapshot. Sizes are integer bytes everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from crew.hardware.declared import parse_exclusions, parse_gpus
from crew.hardware.nvml import NvmlProvider, PynvmlProvider, detect
from crew.hardware.profiles import get_profile
from crew.hardware.types import ExclusionRule, GpuInfo, Inventory, Memory
from crew.units import GIB

if TYPE_CHECKING:
    from crew.config import LayoutConfig


# A profile names a rig's RAM; this much of it is left to the OS, the desktop and localcrew itself.
CPU_RESERVE_BYTES = 2 * GIB


def apply_exclusions(gpus: tuple[GpuInfo, ...], rules: tuple[ExclusionRule, ...]) -> tuple[str | None, ...]:
    """Each GPU's reason for exclusion (the first matching rule), or None."""
    return tuple(next((r.reason for r in rules if r.matches(g)), None) for g in gpus)


def system_memory(meminfo: Path = Path("/proc/meminfo")) -> Memory:
    """Total and available RAM of this machine (MemAvailable counts reclaimable cache as available)."""
    try:
        fields = {}
        for line in meminfo.read_text(encoding="ascii").splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        return Memory(fields["MemTotal"], fields.get("MemAvailable", fields["MemTotal"]))
    except (OSError, KeyError, ValueError, IndexError):
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return Memory(pages * size, pages * size)


def load_inventory(
    layout: LayoutConfig,
    *,
    profile: str | None = None,
    nvml: NvmlProvider | None = None,
    ram: Callable[[], Memory] = system_memory,
) -> Inventory:
    """The inventory the layout asks for: a built-in profile, its Ray cluster's nodes (crew/fleet/probe.py),
    its declared GPUs, or NVML detection."""
    file = Path(layout.path).name
    rules = parse_exclusions(layout.exclude, file=file)
    if profile is not None:
        prof = get_profile(profile)
        all_rules = (*prof.exclude, *rules)
        return Inventory(
            source=prof.name,
            gpus=prof.gpus,
            excluded=apply_exclusions(prof.gpus, all_rules),
            ram=Memory(prof.ram_bytes, prof.ram_bytes),
            ram_usable_bytes=max(0, prof.ram_bytes - CPU_RESERVE_BYTES),
        )
    if layout.cluster is not None:
        # Only now is ray imported: `plan-gpus` without a cluster never loads it.
        from crew.fleet.probe import cluster_gpus

        gpus, notes = cluster_gpus(layout.cluster)
        mem = ram()
        return Inventory(source="cluster", gpus=gpus, excluded=apply_exclusions(gpus, rules), ram=mem,
                         ram_usable_bytes=mem.available_bytes, notes=notes)
    if isinstance(layout.gpus, tuple):
        gpus = parse_gpus(layout.gpus, file=file)
        mem = ram()
        return Inventory(
            source="declared",
            gpus=gpus,
            excluded=apply_exclusions(gpus, rules),
            ram=mem,
            ram_usable_bytes=mem.available_bytes,
        )
    found = detect(nvml if nvml is not None else PynvmlProvider())
    mem = ram()  # measured: what is available now is what a CPU server may take
    if not found.gpus:
        return Inventory(
            source="cpu",
            gpus=(),
            excluded=(),
            ram=mem,
            ram_usable_bytes=mem.available_bytes,
            notes=(found.note,),
        )
    return Inventory(
        source="detected",
        gpus=found.gpus,
        excluded=apply_exclusions(found.gpus, rules),
        ram=mem,
        ram_usable_bytes=mem.available_bytes,
        notes=(found.note,) if found.note else (),
        detected=True,
    )
