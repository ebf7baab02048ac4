"""Built-in rig profiles: the rigs localcrew is made for, to plan for without owning them.

A profile is a declared inventory: nominal memory (no display, no other processes: the layout's reserve
covers those), the card table's bandwidth, and the rig's typical RAM for CPU placements.
"""

from __future__ import annotations

from dataclasses import dataclass

from crew.errors import UsageError
from crew.hardware.cards import lookup
from crew.hardware.types import ExclusionRule, GpuInfo
from crew.units import GIB


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    gpus: tuple[GpuInfo, ...]
    ram_bytes: int
    exclude: tuple[ExclusionRule, ...] = ()


def _gpu(index: int, name: str, memory_gib: int) -> GpuInfo:
    card = lookup(name, memory_gib * GIB)
    return GpuInfo(
        index=index,
        name=name,
        total_bytes=memory_gib * GIB,
        compute_capability=card.compute_capability if card else None,
        bandwidth_bytes_per_s=card.bandwidth_bytes_per_s if card else None,
        bandwidth_source="table" if card else "unknown",
    )


def _3060s(n: int) -> tuple[GpuInfo, ...]:
    return tuple(_gpu(i, "NVIDIA GeForce RTX 3060", 12) for i in range(n))


# The 5060 Ti (Blackwell, compute capability 12.0) is left out as the reference rig does: the CUDA build
# of llama.cpp that llama-cpp-python 0.3.36 compiles has no kernels for sm_120 unless built for it.
_BLACKWELL = ExclusionRule(
    reason="compute capability 12.0: this llama.cpp build has no sm_120 kernels", compute_capability="12.0"
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("2x-rtx3060", "two RTX 3060 12 GB", _3060s(2), 32 * GIB),
        Profile("3x-rtx3060", "three RTX 3060 12 GB", _3060s(3), 32 * GIB),
        Profile("4x-rtx3060", "four RTX 3060 12 GB (one agent per GPU)", _3060s(4), 64 * GIB),
        Profile("rtx3090", "one RTX 3090 24 GB", (_gpu(0, "NVIDIA GeForce RTX 3090", 24),), 32 * GIB),
        Profile(
            "rtx3090+rtx5060ti",
            "RTX 3090 24 GB + RTX 5060 Ti 16 GB (the 5060 Ti excluded)",
            (_gpu(0, "NVIDIA GeForce RTX 3090", 24), _gpu(1, "NVIDIA GeForce RTX 5060 Ti", 16)),
            64 * GIB,
            (_BLACKWELL,),
        ),
        Profile("cpu", "no GPU: every agent on its CPU model", (), 16 * GIB),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(
            f"unknown profile {name!r}",
            where="--profile",
            fix=f"use one of {', '.join(PROFILES)} (see `plan-gpus profiles`)",
        ) from None
