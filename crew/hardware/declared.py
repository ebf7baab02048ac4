"""GPUs and exclusion rules declared in gpu_layout.yaml, from raw mappings to snapshots.

A declared GPU: `{name: RTX 3060, memory_gib: 12, uuid: GPU-..., bandwidth_gbs: 360, host: ws2, index: 1,
compute_capability: "8.6", count: 4}`. Only `name` and `memory_gib` are required; `host` defaults to
`local`, `index` to the GPU's position among its host's GPUs, bandwidth and compute capability to the card
table. `count` repeats an entry (a fleet's four identical cards). Every mistake names file and key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from crew.errors import ConfigError
from crew.hardware.cards import lookup
from crew.hardware.types import ExclusionRule, GpuInfo
from crew.units import GB, GIB, LOCAL

_GPU_KEYS = (
    "name",
    "memory_gib",
    "uuid",
    "bandwidth_gbs",
    "host",
    "index",
    "compute_capability",
    "count",
    "pci_bus_id",
)
_RULE_KEYS = ("name", "uuid", "index", "compute_capability", "host", "reason")
# Bounds no real card or rig reaches; beyond them a number is a typo (or an attack on the planner, which
# was still working after a minute on `count: 1000000000`).
MAX_MEMORY_GIB = 4096
MAX_BANDWIDTH_GBS = 100_000
MAX_COUNT = 64  # GPUs one entry repeats
MAX_INDEX = 1023
MAX_GPUS = 256  # in one layout (the planner takes ~1 s for 256)


def _show(value: Any) -> str:
    """A value for an error line without printing a container (an alias bomb) or a page of digits."""
    text = repr(value) if isinstance(value, bool | int | float | str) else f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:39] + "…"


class _Entry:
    def __init__(self, file: str, key: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        self.file, self.key, self.raw = file, key, raw
        unknown = sorted(set(raw) - set(allowed), key=str)
        if unknown:
            raise ConfigError(
                f"unknown key {_show(unknown[0])}",
                where=self.where(unknown[0]),
                fix=f"use one of: {', '.join(allowed)}",
            )

    def where(self, name: str) -> str:
        return f"{self.file}: {self.key}.{name}"

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise ConfigError("missing required key", where=self.where(name), fix=f"add `{name}:`")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
            raise ConfigError(
                f"expected text, got {type(value).__name__}",
                where=self.where(name),
                fix=f'write `{name}: "..."`',
            )
        return str(value).strip()

    def number(self, name: str, *, integer: bool = False, low: float = 0.0, high: float) -> float | None:
        value = self.raw.get(name)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) \
                or not low <= value <= high:
            want = "a whole number" if integer else "a number"
            raise ConfigError(
                f"expected {want} from {low:g} to {high:g}, got {_show(value)}",
                where=self.where(name),
                fix=f"e.g. `{name}: {max(1, int(low))}`",
            )
        return float(value)

    def capability(self) -> str | None:
        value = self.raw.get("compute_capability")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(
                f'expected a version such as "8.6", got {_show(value)}',
                where=self.where("compute_capability"),
                fix='write it quoted: "12.0"',
            )
        text = str(value).strip()
        parts = text.split(".")
        if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
            raise ConfigError(
                f"{_show(text)} is not a compute capability",
                where=self.where("compute_capability"),
                fix='write major.minor, e.g. "8.6", or a major version alone: "12"',
            )
        return text


def parse_gpus(raw: tuple[Mapping[str, Any], ...], *, file: str = "gpu_layout.yaml") -> tuple[GpuInfo, ...]:
    gpus: list[GpuInfo] = []
    seen: dict[tuple[str, int], str] = {}
    uuids: dict[str, str] = {}
    for pos, item in enumerate(raw):
        e = _Entry(file, f"gpus[{pos}]", item, _GPU_KEYS)
        name = e.text("name", required=True) or ""
        memory = e.number("memory_gib", low=0.001, high=MAX_MEMORY_GIB)
        if memory is None:
            raise ConfigError(
                "missing required key",
                where=e.where("memory_gib"),
                fix="add the card's memory, e.g. `memory_gib: 12`",
            )
        host = e.text("host") or LOCAL
        count = int(e.number("count", integer=True, low=1, high=MAX_COUNT) or 1)
        if len(gpus) + count > MAX_GPUS:
            raise ConfigError(
                f"more than {MAX_GPUS} GPUs declared in all",
                where=e.where("count") if count > 1 else f"{file}: gpus",
                fix=f"declare at most {MAX_GPUS} GPUs; plan a larger fleet host by host",
            )
        uuid = e.text("uuid")
        if uuid is not None and count > 1:
            raise ConfigError(
                "a UUID names one GPU, but `count` repeats this entry",
                where=e.where("uuid"),
                fix="declare each GPU with its own UUID, or drop `uuid`",
            )
        if uuid is not None:
            if uuid.lower() in uuids:
                raise ConfigError(
                    f"UUID {uuid} is declared twice (also {uuids[uuid.lower()]})",
                    where=e.where("uuid"),
                    fix="give each GPU its own UUID",
                )
            uuids[uuid.lower()] = e.key
        total = round(memory * GIB)
        card = lookup(name, total)
        declared_bw = e.number("bandwidth_gbs", low=0.001, high=MAX_BANDWIDTH_GBS)
        bandwidth = round(declared_bw * GB) if declared_bw else (card.bandwidth_bytes_per_s if card else None)
        source = "declared" if declared_bw else ("table" if card else "unknown")
        cc = e.capability() or (card.compute_capability if card else None)
        first_index = e.number("index", integer=True, high=MAX_INDEX)
        for k in range(count):
            index = int(first_index) + k if first_index is not None else sum(g.host == host for g in gpus)
            if (host, index) in seen:
                raise ConfigError(
                    f"GPU {index} of host {host!r} is declared twice (also {seen[host, index]})",
                    where=e.where("index"),
                    fix="give each GPU of a host its own index",
                )
            seen[host, index] = e.key
            gpus.append(
                GpuInfo(
                    index=index,
                    name=name,
                    total_bytes=total,
                    host=host,
                    uuid=uuid,
                    pci_bus_id=e.text("pci_bus_id"),
                    compute_capability=cc,
                    bandwidth_bytes_per_s=bandwidth,
                    bandwidth_source=source,
                )
            )
    return tuple(gpus)


def parse_exclusions(
    raw: tuple[Mapping[str, Any], ...], *, file: str = "gpu_layout.yaml"
) -> tuple[ExclusionRule, ...]:
    rules = []
    for pos, item in enumerate(raw):
        e = _Entry(file, f"exclude[{pos}]", item, _RULE_KEYS)
        reason = e.text("reason")
        if reason is None:
            raise ConfigError(
                "an exclusion needs a reason the plan can show",
                where=e.where("reason"),
                fix='add e.g. `reason: "no llama.cpp kernels for this card yet"`',
            )
        index = e.number("index", integer=True, high=MAX_INDEX)
        rule = ExclusionRule(
            reason=reason,
            name=e.text("name"),
            uuid=e.text("uuid"),
            index=int(index) if index is not None else None,
            compute_capability=e.capability(),
            host=e.text("host"),
        )
        if (rule.name, rule.uuid, rule.index, rule.compute_capability, rule.host) == (None,) * 5:
            raise ConfigError(
                "the rule selects no GPU",
                where=f"{file}: exclude[{pos}]",
                fix="add name, uuid, index, compute_capability or host",
            )
        rules.append(rule)
    return tuple(rules)
