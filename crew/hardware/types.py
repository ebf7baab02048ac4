"""The GPU inventory's types: what each GPU is, the rules that exclude one, system RAM, and the snapshot.

Plain frozen data and no imports of ours beyond units, so that every source of an inventory (nvml.py,
declared.py, profiles.py) and `inventory.load_inventory`, which picks among them, can all import it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from crew.units import LOCAL


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

    def usable_bytes(self, position: int, reserve_bytes: int) -> int:
        """Free memory when detected, total when declared, less the reserve; 0 for an excluded GPU."""
        gpu = self.gpus[position]
        if self.excluded[position] is not None:
            return 0
        base = gpu.free_bytes if self.detected and gpu.free_bytes is not None else gpu.total_bytes
        return max(0, base - reserve_bytes)


@dataclass(frozen=True)
class DeclaredGpu:
    """One entry of `gpus:` in gpu_layout.yaml, every field checked (crew/hardware/declared.py makes the
    snapshots: the card table's defaults, indices, duplicates across entries)."""

    name: str
    memory_gib: float
    uuid: str | None = None
    bandwidth_gbs: float | None = None
    host: str | None = None                # None: this machine
    index: int | None = None               # None: its position among its host's GPUs
    compute_capability: str | None = None  # "8.6"; None: the card table's
    count: int = 1                         # identical GPUs this entry stands for
    pci_bus_id: str | None = None


@dataclass(frozen=True)
class DeclaredExclusion:
    """One entry of `exclude:` in gpu_layout.yaml: a GPU matching every selector given is left out."""

    reason: str
    name: str | None = None
    uuid: str | None = None
    index: int | None = None
    compute_capability: str | None = None
    host: str | None = None
