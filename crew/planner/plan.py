"""The plan: where every agent runs, what each GPU carries, what could not be placed and why.

Frozen data, with a stable JSON form (`plan_to_json` / `plan_from_json`, schema "localcrew.plan/1",
documented in docs/planner.md) that `plan-gpus --json` prints and `plan-gpus --save` writes for
`crewai run` to apply.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from crew.planner.vram import GPU_KV_TYPE, VramEstimate
from crew.units import LOCAL

SCHEMA = "localcrew.plan/1"
PLACEMENTS = ("gpu", "split", "cpu", "api")


@dataclass(frozen=True)
class AgentPlacement:
    name: str
    model: str  # the reference from agents.yaml (or the CPU model's)
    candidate_rank: int  # index in the agent's candidates; cpu: len(candidates), api: one more
    placement: str  # gpu | split | cpu | api
    gpu_indices: tuple[int, ...]  # on `host`; () for cpu and api
    num_ctx: int
    estimate: VramEstimate  # this agent's model alone at its context (what the table shows)
    host: str = LOCAL
    model_path: str | None = None  # the GGUF file; None: a catalog model still to be pulled
    kv_type: str = "f16"
    flash_attn: bool = True
    batch: int = 2048
    ubatch: int = 512
    tensor_split: tuple[float, ...] = ()
    tokens_per_s: float | None = None  # predicted decode speed (bandwidth roofline), None if unknown
    catalog_estimate: bool = False
    slots: int = 1  # requests it may have in flight at once; `estimate` counts a KV cache for each
    draft_path: str | None = None  # speculative decoding's draft model, beside the target on its device
    draft_bytes: int = 0           # the draft's weights, KV cache and compute buffer (not in `estimate`)
    ngram: bool = False            # drafts from the context's n-grams (`draft_model: ngram`): no memory of its own


@dataclass(frozen=True)
class GpuPlan:
    index: int
    host: str
    name: str
    uuid: str | None
    total_bytes: int
    usable_bytes: int  # free (detected) or total (declared), less the reserve
    planned_bytes: int
    excluded: bool
    exclusion_reason: str | None = None
    reserve_bytes: int = 0
    weights_bytes: int = 0
    kv_cache_bytes: int = 0
    compute_bytes: int = 0
    overhead_bytes: int = 0
    agents: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    pci_bus_id: str | None = None
    compute_capability: str | None = None
    bandwidth_bytes_per_s: int | None = None

    @property
    def parts_bytes(self) -> tuple[int, int, int, int, int]:
        """Weights, KV cache, compute, overhead and reserve: the bar segments every view draws."""
        return (self.weights_bytes, self.kv_cache_bytes, self.compute_bytes, self.overhead_bytes,
                self.total_bytes - self.usable_bytes)

    @property
    def headroom_bytes(self) -> int:
        return self.usable_bytes - self.planned_bytes


@dataclass(frozen=True)
class CpuPlan:
    total_bytes: int
    usable_bytes: int
    planned_bytes: int
    agents: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unplaced:
    agent: str
    reason: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeftOut:
    """A model an agent lists that the plan could not consider: the file is missing, not a GGUF, the tag is
    unknown. `plan-gpus --strict` refuses a plan with any."""

    agent: str
    model: str
    reason: str  # what is wrong, and where (the file's path)
    fix: str = ""


@dataclass(frozen=True)
class Plan:
    feasible: bool
    gpus: tuple[GpuPlan, ...]
    agents: tuple[AgentPlacement, ...]
    unplaced: tuple[Unplaced, ...]
    warnings: tuple[str, ...]
    simulated: bool
    source: str  # profile name | "detected" | "declared" | "cluster" | "cpu"
    cpu: CpuPlan | None = None
    optimal: bool = True  # the solver proved it (False: node budget ran out, best found)
    backend: str = "llamacpp"
    kv_type: str = GPU_KV_TYPE  # the KV cache type of GPU placements (gpu_layout.yaml `kv_type`)
    left_out: tuple[LeftOut, ...] = ()  # candidates that could not be resolved or estimated
    notes: tuple[str, ...] = ()  # what the inventory said first: no GPU usable and why
    upgrades: tuple[str, ...] = ()  # bigger models the free memory takes, each checked by re-planning

    def agent(self, name: str) -> AgentPlacement:
        return next(a for a in self.agents if a.name == name)


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The documented JSON form; tuples become lists, sizes stay integer bytes."""
    out = asdict(plan)
    for gpu, src in zip(out["gpus"], plan.gpus, strict=True):
        gpu["headroom_bytes"] = src.headroom_bytes
    return {"schema": SCHEMA, **out}


def plan_from_json(d: Any) -> Plan:
    """Inverse of plan_to_json. A file of any other shape raises ValueError naming the first bad key
    (`[]`, `null`, a missing field, a number in quotes, a list where a mapping belongs, …)."""
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, got {_kind(d)}")
    if d.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} plan (schema: {_short(d.get('schema'))})")
    agents = tuple(_build(AgentPlacement, a, f"agents[{i}]") for i, a in enumerate(_list(d, "agents")))
    gpus = tuple(_build(GpuPlan, g, f"gpus[{i}]") for i, g in enumerate(_list(d, "gpus")))
    _check_agents(agents, gpus)
    cpu = d.get("cpu")
    return Plan(
        feasible=_value(d, "feasible", bool),
        gpus=gpus,
        agents=agents,
        unplaced=tuple(_build(Unplaced, u, f"unplaced[{i}]") for i, u in enumerate(_list(d, "unplaced"))),
        warnings=tuple(_check(w, str, f"warnings[{i}]") for i, w in enumerate(_list(d, "warnings"))),
        simulated=_value(d, "simulated", bool),
        source=_value(d, "source", str),
        cpu=_build(CpuPlan, cpu, "cpu") if cpu else None,
        optimal=_value(d, "optimal", bool, True),
        backend=_value(d, "backend", str, "llamacpp"),
        kv_type=_value(d, "kv_type", str, GPU_KV_TYPE),
        notes=_strings(d, "notes"),
        upgrades=_strings(d, "upgrades"),
        left_out=tuple(  # added after schema 1 was first written: a plan without it has none
            _build(LeftOut, x, f"left_out[{i}]") for i, x in enumerate(_list(d, "left_out") if "left_out" in d else [])
        ),
    )


def plan_from_text(text: str) -> Plan:
    """A saved plan file's text to a Plan; every way it can be broken is a ValueError (JSON nested too deep
    for the decoder included)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    return plan_from_json(data)


MAX_NUM_CTX = 1 << 24


def _check_agents(agents: tuple[AgentPlacement, ...], gpus: tuple[GpuPlan, ...]) -> None:
    """What launch specs rely on: known placements, GPUs the plan lists, sizes that can be."""
    known = {(g.host, g.index) for g in gpus}
    for i, a in enumerate(agents):
        at = f"agents[{i}]"
        if a.placement not in PLACEMENTS:
            raise ValueError(f"{at}.placement: unknown placement {_short(a.placement)}")
        if not 1 <= a.num_ctx <= MAX_NUM_CTX:
            raise ValueError(f"{at}.num_ctx: {a.num_ctx} is out of range (1 to {MAX_NUM_CTX})")
        on_gpu = a.placement in ("gpu", "split")
        if on_gpu != bool(a.gpu_indices) or any((a.host, g) not in known for g in a.gpu_indices):
            raise ValueError(f"{at}.gpu_indices: {list(a.gpu_indices)[:8]} do not match its placement "
                             f"{a.placement!r} and the plan's gpus")
        if a.tensor_split and len(a.tensor_split) != len(a.gpu_indices):
            raise ValueError(f"{at}.tensor_split: one share per GPU expected")
        if any(v < 0 for v in (a.batch, a.ubatch, *vars(a.estimate).values())):
            raise ValueError(f"{at}: a negative size")


_MISSING = object()
_SCALARS: dict[str, type | tuple[type, ...]] = {"int": int, "str": str, "bool": bool, "float": (int, float)}


def _build(cls: Any, data: Any, where: str) -> Any:
    """A dataclass from its JSON mapping, every field checked against its annotation; unknown keys ignored."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {_kind(data)}")
    values = {}
    for f in fields(cls):
        default = f.default if f.default is not MISSING else _MISSING
        values[f.name] = _typed(data, f.name, str(f.type), where, default)
    return cls(**values)


def _typed(data: dict[str, Any], name: str, kind: str, where: str, default: Any) -> Any:
    at = f"{where}.{name}"
    if name not in data:
        if default is _MISSING:
            raise ValueError(f"{at}: missing")
        return default
    value = data[name]
    optional = kind.endswith(" | None")
    kind = kind.removesuffix(" | None")
    if value is None and optional:
        return None
    if kind == "VramEstimate":
        return _build(VramEstimate, value, at)
    if kind.startswith("tuple[") and kind.endswith(", ...]"):
        item = _SCALARS[kind[6:-6]]
        if not isinstance(value, list):
            raise ValueError(f"{at}: expected a list, got {_kind(value)}")
        return tuple(_check(v, item, f"{at}[{i}]") for i, v in enumerate(value))
    return _check(value, _SCALARS[kind], at)


def _check(value: Any, kind: type | tuple[type, ...], at: str) -> Any:
    number: Any = value
    # bool is an int in Python; JSON's true where a number belongs is a broken file, not a 1
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else "number"
        raise ValueError(f"{at}: expected {want}, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{at}: expected a finite number, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 63:
        raise ValueError(f"{at}: {value:.3g} is out of range")
    return float(number) if kind == (int, float) else value


def _value(d: dict[str, Any], name: str, kind: type, default: Any = _MISSING) -> Any:
    return _typed(d, name, kind.__name__, "plan", default)


def _strings(d: dict[str, Any], name: str) -> tuple[str, ...]:
    """An optional list of strings (keys added after schema 1 was first written: absent means none)."""
    return tuple(_check(w, str, f"{name}[{i}]") for i, w in enumerate(_list(d, name) if name in d else []))


def _list(d: dict[str, Any], name: str) -> list[Any]:
    value = d.get(name, _MISSING)
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a list, got {_kind(value) if value is not _MISSING else 'nothing'}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool) or value is None else _kind(value)
    return text if len(text) <= 40 else text[:39] + "…"
