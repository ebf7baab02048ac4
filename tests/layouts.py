"""Hardware fixtures shared by the planner's tests: fake NVML rigs, declared fleets, model costs.

Everything is injected (a provider object, a RAM function), never patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crew.hardware.nvml import MemoryInfo, NvmlUnavailable
from crew.hardware.types import Memory
from crew.units import GIB

MIB = 1024**2


@dataclass
class FakeGpu:
    name: str
    total_bytes: int
    used_bytes: int = 300 * MIB
    uuid: str | None = None
    bus: str = ""
    cc: tuple[int, int] | None = (8, 6)
    bus_width_bits: int | None = None
    mem_clock_mhz: int | None = None


@dataclass
class FakeNvml:
    """An NVML provider for tests: a list of GPUs, or a failure at open()."""

    gpus: list[FakeGpu] = field(default_factory=list)
    fail: str | None = None
    driver: str = "560.35.03"
    opened: int = 0

    def open(self) -> None:
        self.opened += 1
        if self.fail is not None:
            raise NvmlUnavailable(self.fail)

    def driver_version(self) -> str | None:
        return self.driver

    def device_count(self) -> int:
        return len(self.gpus)

    def name(self, index: int) -> str:
        return self.gpus[index].name

    def uuid(self, index: int) -> str | None:
        return self.gpus[index].uuid

    def pci_bus_id(self, index: int) -> str | None:
        return self.gpus[index].bus or f"00000000:{index + 1:02X}:00.0"

    def memory(self, index: int) -> MemoryInfo:
        g = self.gpus[index]
        return MemoryInfo(g.total_bytes, g.total_bytes - g.used_bytes, g.used_bytes)

    def compute_capability(self, index: int) -> tuple[int, int] | None:
        return self.gpus[index].cc

    def memory_bus_width_bits(self, index: int) -> int | None:
        return self.gpus[index].bus_width_bits

    def max_memory_clock_mhz(self, index: int) -> int | None:
        return self.gpus[index].mem_clock_mhz


def rtx3060(i: int, *, used_mib: int = 300) -> FakeGpu:
    return FakeGpu(
        "NVIDIA GeForce RTX 3060",
        12288 * MIB,
        used_mib * MIB,
        f"GPU-3060-{i:04d}",
        cc=(8, 6),
        bus_width_bits=192,
        mem_clock_mhz=7501,
    )


def rtx3090(i: int = 0) -> FakeGpu:
    return FakeGpu(
        "NVIDIA GeForce RTX 3090",
        24576 * MIB,
        400 * MIB,
        f"GPU-3090-{i:04d}",
        cc=(8, 6),
        bus_width_bits=384,
        mem_clock_mhz=9751,
    )


def rtx5060ti(i: int = 1) -> FakeGpu:
    # a new card whose NVML answers no bus width: the bandwidth comes from the card table
    return FakeGpu("NVIDIA GeForce RTX 5060 Ti", 16311 * MIB, 250 * MIB, f"GPU-5060-{i:04d}", cc=(12, 0))


# Detected rigs. GPU 0 of the 3060 rigs drives the display (1.1 GiB used), as on the reference machines.
TWO_3060 = [rtx3060(0, used_mib=1100), rtx3060(1)]
FOUR_3060 = [rtx3060(0, used_mib=1100), rtx3060(1), rtx3060(2), rtx3060(3)]
MIXED = [rtx3090(0), rtx5060ti(1)]


def ram(total_gib: float = 64, available_gib: float = 48) -> Memory:
    return Memory(round(total_gib * GIB), round(available_gib * GIB))


# The five-machine fleet, declared per host in gpu_layout.yaml.
FLEET_YAML = """\
gpus:
  - {host: ws1, name: RTX 3060, memory_gib: 12, count: 4}
  - {host: ws2, name: RTX 3060, memory_gib: 12, count: 2}
  - {host: ws3, name: RTX 3090, memory_gib: 24}
  - {host: ws4, name: RTX 3090, memory_gib: 24, uuid: GPU-ws4-3090}
  - {host: ws4, name: RTX 5060 Ti, memory_gib: 16, uuid: GPU-ws4-5060}
  - {host: ws5, name: RTX 3060, memory_gib: 12, count: 3, bandwidth_gbs: 360}
exclude:
  - {compute_capability: "12.0", reason: "no sm_120 kernels in this llama.cpp build"}
reserve_mib: 512
"""
