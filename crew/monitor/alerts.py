"""Alert thresholds (gpu_layout.yaml `alerts:`) and the pure check of one GPU sample against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crew.errors import ConfigError
from crew.monitor.live import GpuSample

KEYS = ("vram_pct", "temp_c", "util_min_pct")


@dataclass(frozen=True)
class Thresholds:
    vram_pct: float = 92.0      # used/total above this: the next allocation may fail
    temp_c: float = 83.0        # above this most GeForce cards start to throttle
    util_min_pct: float = 20.0  # under this while generating: the model is likely spilling to the CPU


def thresholds_from(alerts: Mapping[str, Any] | None) -> Thresholds:
    """The layout's `alerts:` mapping over the defaults; ConfigError on an unknown key or a bad value."""
    if not alerts:
        return Thresholds()
    unknown = sorted(set(alerts) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown alert key {unknown[0]!r}", where="gpu_layout.yaml: alerts",
                          fix="use " + ", ".join(KEYS))
    values: dict[str, float] = {}
    for key, value in alerts.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{key} must be a non-negative number, not {value!r}",
                              where=f"gpu_layout.yaml: alerts.{key}", fix=f"e.g. {getattr(Thresholds, key)}")
        values[key] = float(value)
    return Thresholds(**values)


@dataclass(frozen=True)
class Alert:
    gpu_index: int
    kind: str  # vram | temp | util
    value: float
    limit: float
    message: str


def check(s: GpuSample, t: Thresholds, *, generating: bool) -> list[Alert]:
    """Thresholds crossed by one sample: strictly above (vram, temp), strictly under (util)."""
    out: list[Alert] = []
    pct = s.used_pct
    if pct is not None and pct > t.vram_pct:
        out.append(Alert(s.index, "vram", pct, t.vram_pct,
                         f"GPU {s.index} ({s.name}): VRAM {pct:.1f} % used, above {t.vram_pct:g} %"))
    if s.temp_c is not None and s.temp_c > t.temp_c:
        out.append(Alert(s.index, "temp", s.temp_c, t.temp_c,
                         f"GPU {s.index} ({s.name}): {s.temp_c} °C, above {t.temp_c:g} °C"))
    if generating and s.util_pct is not None and s.util_pct < t.util_min_pct:
        out.append(Alert(s.index, "util", s.util_pct, t.util_min_pct,
                         f"GPU {s.index} ({s.name}): utilisation {s.util_pct} % while generating, "
                         f"under {t.util_min_pct:g} % (layers on the CPU?)"))
    return out
