"""Built-in rig profiles: the rigs localcrew is made for, to plan for without owning them.

A profile is a declared inventory: nominal memory (no display, no other processes: the layout's reserve
covers those), the card table's bandwidth, and the rig's typical RAM for CPU placements.
"""

from __future__ import annotations

from dataclasses import dataclass

from crew.errors import UsageError
from crew.hardware.cards import lookup
from crew.hardware.types import ExclusionRule, GpuInfo
from crew.units import GIB, LOCAL


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    gpus: tuple[GpuInfo, ...]
    ram_bytes: int
    exclude: tuple[ExclusionRule, ...] = ()


def _gpu(index: int, name: str, memory_gib: int, host: str = LOCAL) -> GpuInfo:
    card = lookup(name, memory_gib * GIB)
    return GpuInfo(
        index=index,
        host=host,
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

# The seed fleet (issue #16): the four workstations of the profiles above as hosts ws1..ws4, and the laptop
# localcrew runs on (`local`), whose 4 GB GPU holds no useful coder model next to the crew: its agents go to
# their API endpoint, or to the workstations. The RAM is the laptop's (CPU placements are local).
_FLEET_5 = (
    *(_gpu(i, "NVIDIA GeForce RTX 3060", 12, "ws1") for i in range(4)),
    _gpu(0, "NVIDIA GeForce RTX 3090", 24, "ws2"), _gpu(1, "NVIDIA GeForce RTX 5060 Ti", 16, "ws2"),
    *(_gpu(i, "NVIDIA GeForce RTX 3060", 12, "ws3") for i in range(2)),
    _gpu(0, "NVIDIA GeForce RTX 3090", 24, "ws4"),
    _gpu(0, "NVIDIA GeForce RTX 3050 Laptop GPU", 4),
)
_LAPTOP = ExclusionRule(reason="4 GB laptop GPU: its agents use their API endpoint", host=LOCAL, name="laptop")

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
        Profile("fleet-5", "five machines: ws1 4x RTX 3060, ws2 RTX 3090 + 5060 Ti (excluded), ws3 2x RTX 3060, "
                "ws4 RTX 3090, and this laptop (its 4 GB GPU excluded)", _FLEET_5, 16 * GIB, (_BLACKWELL, _LAPTOP)),
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
