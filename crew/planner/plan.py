"""The plan: where every agent runs, what each GPU carries, what could not be placed and why.

Frozen data, with a stable JSON form (`plan_to_json` / `plan_from_json`, schema "localcrew.plan/1",
documented in docs/planner.md) that `plan-gpus --json` prints and `plan-gpus --save` writes for
`crewai run` to apply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from crew.planner.vram import VramEstimate

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
    host: str = "local"
    model_path: str | None = None  # the GGUF file; None: a catalog model still to be pulled
    kv_type: str = "f16"
    flash_attn: bool = True
    batch: int = 2048
    ubatch: int = 512
    tensor_split: tuple[float, ...] = ()
    tokens_per_s: float | None = None  # predicted decode speed (bandwidth roofline), None if unknown
    catalog_estimate: bool = False


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
class Plan:
    feasible: bool
    gpus: tuple[GpuPlan, ...]
    agents: tuple[AgentPlacement, ...]
    unplaced: tuple[Unplaced, ...]
    warnings: tuple[str, ...]
    simulated: bool
    source: str  # profile name | "detected" | "declared" | "cpu"
    cpu: CpuPlan | None = None
    optimal: bool = True  # the solver proved it (False: node budget ran out, best found)
    backend: str = "llamacpp"

    def agent(self, name: str) -> AgentPlacement:
        return next(a for a in self.agents if a.name == name)


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The documented JSON form; tuples become lists, sizes stay integer bytes."""
    out = asdict(plan)
    for gpu, src in zip(out["gpus"], plan.gpus, strict=True):
        gpu["headroom_bytes"] = src.headroom_bytes
    return {"schema": SCHEMA, **out}


def plan_from_json(d: dict[str, Any]) -> Plan:
    """Inverse of plan_to_json; raises KeyError/TypeError/ValueError on a file of another shape."""
    if d.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} plan (schema: {d.get('schema')!r})")
    agents = tuple(
        _build(AgentPlacement, {**a, "estimate": _build(VramEstimate, a["estimate"])}) for a in d["agents"]
    )
    for a in agents:
        if a.placement not in PLACEMENTS:
            raise ValueError(f"agent {a.name}: unknown placement {a.placement!r}")
    return Plan(
        feasible=bool(d["feasible"]),
        gpus=tuple(_build(GpuPlan, g) for g in d["gpus"]),
        agents=agents,
        unplaced=tuple(_build(Unplaced, u) for u in d["unplaced"]),
        warnings=tuple(d["warnings"]),
        simulated=bool(d["simulated"]),
        source=str(d["source"]),
        cpu=_build(CpuPlan, d["cpu"]) if d.get("cpu") else None,
        optimal=bool(d.get("optimal", True)),
        backend=str(d.get("backend", "llamacpp")),
    )


def _build(cls: Any, data: dict[str, Any]) -> Any:
    """A dataclass from its JSON mapping: known fields only, lists back to tuples."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})
