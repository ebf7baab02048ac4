"""A live NVML fake for the monitor's tests: FakeNvml (tests/layouts.py) plus utilisation, temperature,
power and processes, with per-GPU failures of a chosen query."""

from __future__ import annotations

from dataclasses import dataclass, field

from crew.hardware.nvml import MemoryInfo, NvmlUnavailable
from tests.layouts import GIB, MIB, FakeGpu, FakeNvml, rtx3060, rtx3090


@dataclass
class Live:
    util: int | None = 50
    temp: int | None = 60
    power_mw: int | None = 150_000
    procs: tuple[tuple[int, int | None], ...] = ()
    fails: frozenset[str] = frozenset()  # query names that raise NvmlUnavailable on this GPU
    grow_bytes: int = 0  # used memory grows by this after each memory read (a model loading)


@dataclass
class FakeLiveNvml(FakeNvml):
    live: list[Live] = field(default_factory=list)
    calls: int = 0

    def _q(self, index: int, what: str) -> Live:
        self.calls += 1
        lv = self.live[index]
        if what in lv.fails:
            raise NvmlUnavailable(f"{what} query failed (Unknown Error)")
        return lv

    def memory(self, index: int) -> MemoryInfo:
        lv = self._q(index, "memory")
        out = super().memory(index)
        self.gpus[index].used_bytes += lv.grow_bytes
        return out

    def utilization_pct(self, index: int) -> int | None:
        return self._q(index, "util").util

    def temperature_c(self, index: int) -> int | None:
        return self._q(index, "temp").temp

    def power_mw(self, index: int) -> int | None:
        return self._q(index, "power").power_mw

    def processes(self, index: int) -> tuple[tuple[int, int | None], ...]:
        return self._q(index, "procs").procs


def three_gpus() -> FakeLiveNvml:
    """3090 busy and hot-ish, a 3060 near full, and a 3060 whose temperature query errors."""
    return FakeLiveNvml(
        gpus=[rtx3090(0), FakeGpu("NVIDIA GeForce RTX 3060", 12 * GIB, 11 * GIB + 600 * MIB, "GPU-3060-0001"),
              rtx3060(2)],
        live=[Live(util=97, temp=71, procs=((4242, 9 * GIB),)), Live(util=5, temp=84),
              Live(util=40, fails=frozenset({"temp"}))],
    )
