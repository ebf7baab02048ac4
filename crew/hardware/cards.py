"""Known cards: memory bandwidth and compute capability by name, for when NVML cannot say.

NVML gives the memory bus width and the maximum memory clock, from which the bandwidth follows; a declared
GPU or a card whose NVML does not answer those (some laptops, vGPUs) is looked up here. Numbers are the
vendors' published specifications (GB/s are 10^9 bytes per second).

Laptop parts share a name with a desktop card but not its memory: an "RTX 3080 Ti Laptop GPU" has a 256-bit
bus at 16 Gbps (512 GB/s), the desktop 3080 Ti 384-bit at 19 Gbps (912 GB/s). Their entries carry "laptop"
in the key, and a laptop name never falls back to a desktop entry (an unknown bandwidth is better than one
twice too high). NVML calls them "... Laptop GPU" (RTX 30/40) or "... with Max-Q Design" (RTX 20); some
RTX 20 laptops report the bare desktop name, which nothing here can tell apart.
Laptop figures: bus width x the memory data rate of NVIDIA's reference configuration, from NVIDIA's
"GeForce RTX 20 / 30 / 40 Series Laptops" specification pages (memory size, type, bus width) and the
TechPowerUp GPU Database entry of each mobile part (data rate, bandwidth); transcribed from knowledge in a
session without network, not re-fetched. OEMs may clock memory lower (Max-Q / low-TGP designs): the figure
is the part's maximum, so a roofline from it is an upper bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crew.units import GB, GIB


@dataclass(frozen=True)
class CardSpec:
    key: str  # what the (normalised) name must contain
    bandwidth_bytes_per_s: int
    compute_capability: str
    memory_gib: int | None = None  # set when one name covers cards with different memory and bandwidth


def _c(key: str, gbs: float, cc: str, gib: int | None = None) -> CardSpec:
    return CardSpec(key, round(gbs * GB), cc, gib)


# Longer keys first within a family is not needed: lookup prefers the longest matching key.
CARDS: tuple[CardSpec, ...] = (
    _c("rtx 3060 ti", 448, "8.6"),
    _c("rtx 3060", 360, "8.6", 12),
    _c("rtx 3060", 240, "8.6", 8),
    _c("rtx 3070 ti", 608, "8.6"),
    _c("rtx 3070", 448, "8.6"),
    _c("rtx 3080 ti", 912, "8.6"),
    _c("rtx 3080", 760, "8.6", 10),
    _c("rtx 3080", 912, "8.6", 12),
    _c("rtx 3090 ti", 1008, "8.6"),
    _c("rtx 3090", 936, "8.6"),
    _c("rtx 4060 ti", 288, "8.9"),
    _c("rtx 4060", 272, "8.9"),
    _c("rtx 4070 ti super", 672, "8.9"),
    _c("rtx 4070 ti", 504, "8.9"),
    _c("rtx 4070 super", 504, "8.9"),
    _c("rtx 4070", 504, "8.9"),
    _c("rtx 4080 super", 736, "8.9"),
    _c("rtx 4080", 717, "8.9"),
    _c("rtx 4090", 1008, "8.9"),
    _c("rtx 5060 ti", 448, "12.0"),
    _c("rtx 5060", 448, "12.0"),
    _c("rtx 5070 ti", 896, "12.0"),
    _c("rtx 5070", 672, "12.0"),
    _c("rtx 5080", 960, "12.0"),
    _c("rtx 5090", 1792, "12.0"),
    _c("rtx 2080 ti", 616, "7.5"),
    # laptop parts: bus width (bit) / 8 x data rate (Gbps)
    _c("rtx 2050 laptop", 112, "8.6"),  # 64-bit GDDR6 14 Gbps (GA107)
    _c("rtx 2060 laptop", 336, "7.5"),  # 192-bit GDDR6 14 Gbps
    _c("rtx 2070 laptop", 448, "7.5"),  # 256-bit GDDR6 14 Gbps
    _c("rtx 2070 super laptop", 448, "7.5"),  # 256-bit GDDR6 14 Gbps
    _c("rtx 2080 laptop", 448, "7.5"),  # 256-bit GDDR6 14 Gbps
    _c("rtx 2080 super laptop", 448, "7.5"),  # 256-bit GDDR6 14 Gbps
    _c("rtx 3050 laptop", 192, "8.6"),  # 128-bit GDDR6 12 Gbps
    _c("rtx 3050 ti laptop", 192, "8.6"),  # 128-bit GDDR6 12 Gbps
    _c("rtx 3060 laptop", 336, "8.6"),  # 192-bit GDDR6 14 Gbps
    _c("rtx 3070 laptop", 448, "8.6"),  # 256-bit GDDR6 14 Gbps
    _c("rtx 3070 ti laptop", 448, "8.6"),  # 256-bit GDDR6 14 Gbps
    _c("rtx 3080 laptop", 448, "8.6"),  # 256-bit GDDR6 14 Gbps (8 and 16 GB alike)
    _c("rtx 3080 ti laptop", 512, "8.6"),  # 256-bit GDDR6 16 Gbps
    _c("rtx 4050 laptop", 192, "8.9"),  # 96-bit GDDR6 16 Gbps
    _c("rtx 4060 laptop", 256, "8.9"),  # 128-bit GDDR6 16 Gbps
    _c("rtx 4070 laptop", 256, "8.9"),  # 128-bit GDDR6 16 Gbps
    _c("rtx 4080 laptop", 432, "8.9"),  # 192-bit GDDR6 18 Gbps
    _c("rtx 4090 laptop", 576, "8.9"),  # 256-bit GDDR6 18 Gbps
    _c("gtx 1080 ti", 484, "6.1"),
    _c("rtx a4000", 448, "8.6"),
    _c("rtx a5000", 768, "8.6"),
    _c("rtx a6000", 768, "8.6"),
    _c("rtx 6000 ada", 960, "8.9"),
    _c("tesla t4", 320, "7.5"),
    _c("tesla p40", 347, "6.1"),
    _c("tesla v100", 900, "7.0"),
    _c("a10", 600, "8.6"),
    _c("a40", 696, "8.6"),
    _c("l4", 300, "8.9"),
    _c("l40s", 864, "8.9"),
    _c("a100", 1555, "8.0", 40),
    _c("a100", 2039, "8.0", 80),
    _c("h100 pcie", 2000, "9.0"),
    _c("h100", 3350, "9.0"),
    _c("h200", 4800, "9.0"),
)


_LAPTOP = re.compile(r"\b(laptop gpu|laptop|mobile|with max q design|max q)\b")


def normalise(name: str) -> str:
    """'NVIDIA GeForce RTX 3060' → 'rtx 3060', 'NVIDIA GeForce RTX 3080 Ti Laptop GPU' → 'rtx 3080 ti laptop':
    vendor words dropped, spacing and case folded, every laptop marking one trailing word."""
    text = re.sub(r"[-_]", " ", name.lower())
    text = re.sub(r"\b(nvidia|geforce)\b", " ", text)
    laptop = bool(_LAPTOP.search(text))
    text = " ".join(_LAPTOP.sub(" ", text).split())
    return f"{text} laptop" if laptop else text


def lookup(name: str, total_bytes: int | None = None) -> CardSpec | None:
    """The spec of the card called `name`; `total_bytes` picks between variants that share a name."""
    norm = f" {normalise(name)} "
    laptop = norm.endswith(" laptop ")
    hits = [c for c in CARDS if f" {c.key} " in norm and c.key.endswith(" laptop") == laptop]
    if not hits:
        return None
    longest = max(len(c.key) for c in hits)
    hits = [c for c in hits if len(c.key) == longest]
    if len(hits) > 1 and total_bytes is not None:
        # A card reports slightly less than its nominal size: pick the nearest nominal memory.
        return min(hits, key=lambda c: abs((c.memory_gib or 0) * GIB - total_bytes))
    return hits[0]


def bandwidth_from_clock(bus_width_bits: int | None, mem_clock_mhz: int | None) -> int | None:
    """Peak bandwidth from NVML's numbers. NVML reports the memory clock at half the data rate for GDDR6,
    GDDR6X and HBM alike (RTX 3060: 192 bit x 7501 MHz x 2 = 360 GB/s; RTX 3090: 384 bit x 9751 MHz x 2 =
    936 GB/s; A100: 5120 bit x 1215 MHz x 2 = 1555 GB/s), hence the factor 2."""
    if not bus_width_bits or not mem_clock_mhz or bus_width_bits <= 0 or mem_clock_mhz <= 0:
        return None
    return bus_width_bits // 8 * mem_clock_mhz * 1_000_000 * 2
