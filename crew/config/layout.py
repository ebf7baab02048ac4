"""gpu_layout.yaml: the backend, the GPUs (detected or declared), exclusion rules, API endpoints, alerts.

Declared GPUs and exclusion rules become typed entries here, each field checked by the same `Section` as
every other key; what only shows across entries (a UUID or an index declared twice, too many GPUs in all)
is checked by crew/hardware/declared.py, called here too, so every mistake is found when the file is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crew.config.section import Section, key_name, show
from crew.config.types import BACKENDS, MIB, ApiEndpoint, DeclaredExclusion, DeclaredGpu, LayoutConfig
from crew.config.yaml_reader import read_yaml
from crew.errors import ConfigError
from crew.models.llamacpp import GPU_KV_TYPE, KV_TYPES

_LAYOUT_KEYS = ("backend", "gpus", "reserve_mib", "base_port", "simulate", "allow_split", "exclude",
                "api_endpoints", "keep_warm", "on_spill", "kv_type", "alerts", "cluster")
_ALERT_KEYS = ("vram_pct", "temp_c", "util_min_pct")
_ALERT_RANGES = {"vram_pct": (0, 100), "temp_c": (0, 150), "util_min_pct": (-1, 100)}  # (low, high]
_API_KEYS = ("model", "base_url", "api_key_env")
_GPU_KEYS = ("name", "memory_gib", "uuid", "bandwidth_gbs", "host", "index", "compute_capability", "count",
             "pci_bus_id")
_RULE_KEYS = ("name", "uuid", "index", "compute_capability", "host", "reason")
# Bounds no real card or rig reaches; beyond them a number is a typo (or an attack on the planner, which
# was still working after a minute on `count: 1000000000`). The total (256 GPUs) is declared.py's.
MAX_MEMORY_GIB = 4096
MAX_BANDWIDTH_GBS = 100_000
MAX_COUNT = 64  # GPUs one entry repeats
MAX_INDEX = 1023
CLUSTER_FIX = ("write `cluster: auto` (the Ray cluster running on this machine) or the head's `host:port`, "
               "e.g. `cluster: 10.0.0.2:6379`")


def load_layout(path: Path) -> LayoutConfig:
    file = path.name
    s = Section(file, "", read_yaml(path), _LAYOUT_KEYS)
    backend = s.text("backend", "auto")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {show(backend)}", where=f"{file}: backend",
                          fix=f"use one of {', '.join(BACKENDS)}")
    gpus_raw = s.get("gpus", (str, list), "detect")
    if isinstance(gpus_raw, str) and gpus_raw != "detect":
        raise ConfigError(f"{show(gpus_raw)} is not a GPU list", where=f"{file}: gpus",
                          fix="write `gpus: detect` or a list of `{name: ..., memory_gib: ...}`")
    exclude_raw = s.get("exclude", list, [])
    endpoints = {}
    for name, raw in (s.get("api_endpoints", dict, {}) or {}).items():
        e = Section(file, f"api_endpoints.{key_name(name)}", raw, _API_KEYS)
        endpoints[name] = ApiEndpoint(name=name, model=e.text("model"), base_url=e.text("base_url", None),
                                      api_key_env=e.text("api_key_env", None))
    on_spill = s.text("on_spill", "fail")
    if on_spill not in ("fail", "warn"):
        raise ConfigError(f"unknown value {show(on_spill)}", where=f"{file}: on_spill", fix="use fail or warn")
    kv_type = s.text("kv_type", GPU_KV_TYPE)
    if kv_type not in KV_TYPES:
        raise ConfigError(f"unknown KV cache type {show(kv_type)}", where=f"{file}: kv_type",
                          fix="use f16, q8_0 or q4_0")
    exclude = exclusion_entries(exclude_raw, file=file)
    gpus = gpus_raw if isinstance(gpus_raw, str) else gpu_entries(gpus_raw, file=file)
    if not isinstance(gpus, str):
        from crew.hardware.declared import parse_gpus

        parse_gpus(gpus, file=file)  # what only shows across entries, found now rather than when planning
    cluster = cluster_address(s.get("cluster", str, None, fix=CLUSTER_FIX), file=file)
    if cluster is not None and not isinstance(gpus, str):
        raise ConfigError("a cluster names its GPUs itself (each node's probe), but `gpus:` declares some",
                          where=f"{file}: cluster", fix="drop the `gpus:` list (or `cluster:` to plan the "
                                                        "declared GPUs without Ray)")
    al = Section(file, "alerts", s.get("alerts", dict, {}) or {}, _ALERT_KEYS)
    alerts = {k: al.number(k, low=_ALERT_RANGES[k][0], high=_ALERT_RANGES[k][1]) for k in _ALERT_KEYS
              if k in al.data}
    return LayoutConfig(
        on_spill=on_spill,
        kv_type=kv_type,
        alerts=alerts,
        backend=backend,
        gpus=gpus,
        reserve_bytes=s.positive_int("reserve_mib", 512, low=0, high=1_000_000) * MIB,
        base_port=s.positive_int("base_port", 11500, low=1024, high=65000),
        simulate=bool(s.get("simulate", bool, False)),
        allow_split=bool(s.get("allow_split", bool, False)),
        exclude=exclude,
        api_endpoints=endpoints,
        keep_warm=bool(s.get("keep_warm", bool, False)),
        cluster=cluster,
        path=str(path),
    )


def cluster_address(raw: str | None, *, file: str = "gpu_layout.yaml") -> str | None:
    """`cluster:`: `auto`, or the Ray head's `host:port` (its GCS); None when absent. Checked here, so a typo
    is one line before anything connects."""
    if raw is None:
        return None
    text = raw.strip()
    if text == "auto":
        return text
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not sep or not host or any(c.isspace() or c in "/@?#" for c in host) \
            or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{show(text)} is neither `auto` nor host:port", where=f"{file}: cluster",
                          fix=CLUSTER_FIX + (" (Ray Client's ray:// addresses are not supported)"
                                             if "://" in text else ""))
    return f"{host}:{int(port)}" if ":" not in host else f"[{host}]:{int(port)}"


def gpu_entries(raw: Sequence[Any], *, file: str = "gpu_layout.yaml") -> tuple[DeclaredGpu, ...]:
    """The `gpus:` list, each entry checked: `{name: RTX 3060, memory_gib: 12, uuid: GPU-..., bandwidth_gbs:
    360, host: ws2, index: 1, compute_capability: "8.6", count: 4, pci_bus_id: ...}`; only `name` and
    `memory_gib` are required, `count` repeats the entry (a fleet's four identical cards)."""
    if not all(isinstance(g, dict) for g in raw):
        raise ConfigError("each GPU must be a mapping", where=f"{file}: gpus",
                          fix="write each GPU as `- {name: RTX 3060, memory_gib: 12}`")
    out = []
    for pos, item in enumerate(raw):
        e = Section(file, f"gpus[{pos}]", item, _GPU_KEYS)
        name = e.label("name", required=True) or ""
        memory = e.bounded("memory_gib", low=0.001, high=MAX_MEMORY_GIB)
        if memory is None:
            raise ConfigError("missing required key", where=e.where("memory_gib"),
                              fix="add the card's memory, e.g. `memory_gib: 12`")
        host = e.label("host")
        count = int(e.bounded("count", integer=True, low=1, high=MAX_COUNT) or 1)
        uuid = e.label("uuid")
        if uuid is not None and count > 1:
            raise ConfigError("a UUID names one GPU, but `count` repeats this entry", where=e.where("uuid"),
                              fix="declare each GPU with its own UUID, or drop `uuid`")
        bandwidth = e.bounded("bandwidth_gbs", low=0.001, high=MAX_BANDWIDTH_GBS)
        capability = e.capability()
        index = e.bounded("index", integer=True, high=MAX_INDEX)
        out.append(DeclaredGpu(name=name, memory_gib=memory, uuid=uuid, bandwidth_gbs=bandwidth, host=host,
                               index=int(index) if index is not None else None, compute_capability=capability,
                               count=count, pci_bus_id=e.label("pci_bus_id")))
    return tuple(out)


def exclusion_entries(raw: Sequence[Any], *, file: str = "gpu_layout.yaml") -> tuple[DeclaredExclusion, ...]:
    """The `exclude:` list, each rule checked: a reason the plan can show, and at least one selector."""
    if not all(isinstance(e, dict) for e in raw):
        raise ConfigError("each rule must be a mapping", where=f"{file}: exclude",
                          fix='write `- {name: "5060", reason: "..."}`')
    rules = []
    for pos, item in enumerate(raw):
        e = Section(file, f"exclude[{pos}]", item, _RULE_KEYS)
        reason = e.label("reason")
        if reason is None:
            raise ConfigError("an exclusion needs a reason the plan can show", where=e.where("reason"),
                              fix='add e.g. `reason: "no llama.cpp kernels for this card yet"`')
        index = e.bounded("index", integer=True, high=MAX_INDEX)
        rule = DeclaredExclusion(reason=reason, name=e.label("name"), uuid=e.label("uuid"),
                                 index=int(index) if index is not None else None,
                                 compute_capability=e.capability(), host=e.label("host"))
        if (rule.name, rule.uuid, rule.index, rule.compute_capability, rule.host) == (None,) * 5:
            raise ConfigError("the rule selects no GPU", where=f"{file}: exclude[{pos}]",
                              fix="add name, uuid, index, compute_capability or host")
        rules.append(rule)
    return tuple(rules)
