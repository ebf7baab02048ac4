"""The GPU inventory as plain snapshots: what each GPU is, which are excluded and why, and system RAM.

Three sources produce the same `Inventory`: NVML detection (nvml.py), GPUs declared in gpu_layout.yaml
(declared.py) and built-in rig profiles (profiles.py). `load_inventory` picks one from the layout; the
planner reads only the snapshot. Sizes are integer bytes everywhere.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crew.config import LayoutConfig
    from crew.hardware.nvml import NvmlProvider

GIB = 1024**3
LOCAL = "local"
# A profile names a rig's RAM; this much of it is left to the OS, the desktop and localcrew itself.
CPU_RESERVE_BYTES = 2 * GIB


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    host: str = LOCAL
    uuid: str | None = None
    pci_bus_id: str | None = None
    free_bytes: int | None = None  # only when detected: what other processes leave
    used_bytes: int | None = None
    compute_capability: str | None = None  # "8.6"
    driver_version: str | None = None
    bandwidth_bytes_per_s: int | None = None
    bandwidth_source: str = "unknown"  # nvml | table | declared | unknown
    memory_bus_width_bits: int | None = None
    memory_clock_mhz: int | None = None

    @property
    def label(self) -> str:
        where = "" if self.host == LOCAL else f"{self.host} "
        return f"{where}GPU {self.index} ({self.name})"


@dataclass(frozen=True)
class ExclusionRule:
    """A GPU matching every selector given is left out of the plan; `reason` is shown with it."""

    reason: str
    name: str | None = None  # case-insensitive substring, or a glob with * ? [
    uuid: str | None = None
    index: int | None = None
    compute_capability: str | None = None  # "12.0" exact, "12" any 12.x
    host: str | None = None

    def matches(self, gpu: GpuInfo) -> bool:
        if self.host is not None and gpu.host != self.host:
            return False
        if self.index is not None and gpu.index != self.index:
            return False
        if self.uuid is not None and (gpu.uuid or "").lower() != self.uuid.lower():
            return False
        if self.name is not None and not _name_matches(self.name, gpu.name):
            return False
        if self.compute_capability is not None:
            cc = gpu.compute_capability
            if cc is None:
                return False
            want = self.compute_capability
            if cc != want and not ("." not in want and cc.split(".")[0] == want):
                return False
        return True


def _name_matches(pattern: str, name: str) -> bool:
    p, n = pattern.lower(), name.lower()
    return fnmatch.fnmatchcase(n, p) if any(ch in p for ch in "*?[") else p in n


@dataclass(frozen=True)
class Memory:
    total_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class Inventory:
    source: str  # "detected" | "declared" | "cpu" | a profile name
    gpus: tuple[GpuInfo, ...]
    excluded: tuple[str | None, ...]  # aligned with gpus: the reason, or None
    ram: Memory
    ram_usable_bytes: int  # what CPU placements may use
    notes: tuple[str, ...] = ()
    detected: bool = False  # free memory is real (NVML), not assumed
    rules: tuple[ExclusionRule, ...] = field(default=())

    def usable_bytes(self, position: int, reserve_bytes: int) -> int:
        """Free memory when detected, total when declared, less the reserve; 0 for an excluded GPU."""
        gpu = self.gpus[position]
        if self.excluded[position] is not None:
            return 0
        base = gpu.free_bytes if self.detected and gpu.free_bytes is not None else gpu.total_bytes
        return max(0, base - reserve_bytes)


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
    """The inventory the layout asks for: a built-in profile, its declared GPUs, or NVML detection."""
    from crew.hardware.declared import parse_exclusions, parse_gpus

    file = Path(layout.path).name
    rules = parse_exclusions(layout.exclude, file=file)
    if profile is not None:
        from crew.hardware.profiles import get_profile

        prof = get_profile(profile)
        all_rules = (*prof.exclude, *rules)
        return Inventory(
            source=prof.name,
            gpus=prof.gpus,
            excluded=apply_exclusions(prof.gpus, all_rules),
            ram=Memory(prof.ram_bytes, prof.ram_bytes),
            ram_usable_bytes=max(0, prof.ram_bytes - CPU_RESERVE_BYTES),
            rules=all_rules,
        )
    if isinstance(layout.gpus, tuple):
        gpus = parse_gpus(layout.gpus, file=file)
        mem = ram()
        return Inventory(
            source="declared",
            gpus=gpus,
            excluded=apply_exclusions(gpus, rules),
            ram=mem,
            ram_usable_bytes=mem.available_bytes,
            rules=rules,
        )
    from crew.hardware.nvml import PynvmlProvider, detect

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
            rules=rules,
        )
    return Inventory(
        source="detected",
        gpus=found.gpus,
        excluded=apply_exclusions(found.gpus, rules),
        ram=mem,
        ram_usable_bytes=mem.available_bytes,
        notes=(found.note,) if found.note else (),
        detected=True,
        rules=rules,
    )
