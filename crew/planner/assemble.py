"""A solver solution turned into the Plan users read: GPUs, agents, the unplaced with reasons, warnings.

`Candidate` and `Requests`, what build.py hands over beside the solution, are defined here, by their reader:
build.py imports this module, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crew.hardware.types import Inventory
from crew.planner.plan import AgentPlacement, CpuPlan, GpuPlan, LeftOut, Plan, Unplaced
from crew.planner.problem import ModelCost, Option, Problem, Request, Solution, share_bytes
from crew.planner.suggest import Fix, priority_fix, reason, suggestions, upgrades, why_lesser
from crew.planner.vram import RunSettings, VramEstimate, decode_tokens_per_s
from crew.units import LOCAL, gib

if TYPE_CHECKING:
    from crew.config import AgentConfig, LayoutConfig
    from crew.models.footprint import ModelFootprint


@dataclass(frozen=True)
class Candidate:
    ref: str
    rank: int  # position in agents.yaml (llm first, then fallbacks)
    fp: ModelFootprint
    settings: RunSettings
    est: VramEstimate
    cost: ModelCost
    draft_path: str | None = None  # the draft model's file (agents.yaml `draft_model`), counted in `cost`
    draft_bytes: int = 0
    ngram: bool = False  # `draft_model: ngram`: drafted from the context's n-grams (nothing to count)


@dataclass
class Requests:
    """The solver's requests and, aligned with them, what the plan needs to report each choice."""

    requests: list[Request]
    gpu: list[list[Candidate]]
    cpu: list[Candidate | None]
    left_out: list[LeftOut]  # candidates that could not be resolved or estimated, in agents.yaml order


_NO_ESTIMATE = VramEstimate(0, 0, 0, 0, 0, 0)


def assemble(
    inv: Inventory,
    layout: LayoutConfig,
    positions: list[int],
    problem: Problem,
    solution: Solution,
    reqs: Requests,
    agents: Sequence[AgentConfig],
    fixes: Callable[[int], list[Fix]],
    bigger: Callable[[int], list[Fix]] = lambda i: [],
) -> Plan:
    placements, unplaced = [], []
    ups: list[str] = []
    warnings: list[str] = []
    have_gpus = any(not d.is_cpu for d in problem.devices)
    for i, (agent, choice) in enumerate(zip(agents, solution.choices, strict=True)):
        ctx = reqs.gpu[i][0].settings.ctx_tokens if reqs.gpu[i] else agent.num_ctx
        if choice.placement == "none":
            unplaced.append(
                Unplaced(
                    agent.name,
                    reason(problem, solution, i, ctx),
                    suggestions(problem, solution, i, fixes(i), goal="placed"),
                )
            )
            continue
        placements.append(_placement(inv, layout, positions, problem, choice, reqs, i, agent))
        if choice.placement in ("cpu", "api") and have_gpus:
            ways = suggestions(problem, solution, i, fixes(i), goal="gpu")
            warnings.append(
                f"{agent.name} runs on its {choice.placement.upper()} fallback: "
                f"{reason(problem, solution, i, ctx)}"
                + (f". To get it a GPU: {'; or '.join(ways)}" if ways else "")
            )
        elif choice.placement in ("gpu", "split") and reqs.gpu[i] and placements[-1].candidate_rank > 0:
            warnings.append(_stepped_down(problem, solution, i, reqs.gpu[i][0], placements[-1].model, fixes))
        elif choice.placement in ("gpu", "split") and solution.optimal:
            ups += upgrades(problem, solution, i, bigger(i))
    for p in placements:
        wanted = next(a.num_ctx for a in agents if a.name == p.name)
        if p.placement != "api" and p.num_ctx < wanted:
            warnings.append(
                f"{p.name}: context {p.num_ctx} instead of {wanted}: {p.model} was trained for "
                f"{p.num_ctx} tokens"
            )
    catalog = sorted({p.model for p in placements if p.catalog_estimate})
    if catalog:
        warnings.append(
            "catalog estimates (not pulled yet, sizes from the built-in catalog): " + ", ".join(catalog)
        )
    if not solution.optimal:
        levels = (
            "placing every agent",
            "fewest fallbacks",
            "best models",
            "fewest agents sharing a GPU",
            "balance (smallest headroom)",
        )
        proven = levels[: solution.proven_levels]
        warnings.append(
            f"the search stopped after {solution.nodes} nodes: "
            + (f"{', '.join(proven)} proven optimal; " if proven else "")
            + f"{', '.join(levels[solution.proven_levels :])}: the best found, not proven"
        )
    return Plan(
        feasible=not unplaced,
        gpus=_gpus(inv, layout, positions, problem, solution),
        agents=tuple(placements),
        unplaced=tuple(unplaced),
        warnings=tuple(warnings),
        simulated=layout.simulate,
        source=inv.source,
        cpu=_cpu(inv, problem, solution),
        optimal=solution.optimal,
        backend="ollama" if layout.backend == "ollama" else "llamacpp",
        kv_type=layout.kv_type,
        left_out=tuple(reqs.left_out),
        notes=tuple(inv.notes),
        upgrades=tuple(ups),
    )


def _stepped_down(
    problem: Problem, solution: Solution, i: int, first: Candidate, got: str, fixes: Callable[[int], list[Fix]]
) -> str:
    """Why an agent runs a lesser candidate (the solver's real reason), and the checked ways to its first."""
    need, ctx = first.cost.total_bytes, first.settings.ctx_tokens
    ways = suggestions(problem, solution, i, [*fixes(i), *priority_fix(problem, solution, i)], goal="first")
    return (
        f"{problem.requests[i].agent} runs {got}: its first choice {first.ref} needs {gib(need)} at ctx {ctx}; "
        f"{why_lesser(problem, solution, i)}"
        + (f". To get it: {'; or '.join(ways)}" if ways else "")
    )


def _placement(
    inv: Inventory,
    layout: LayoutConfig,
    positions: list[int],
    problem: Problem,
    o: Option,
    reqs: Requests,
    i: int,
    agent: AgentConfig,
) -> AgentPlacement:
    if o.placement == "api":
        endpoint = layout.api_endpoints[agent.api or ""]
        return AgentPlacement(agent.name, endpoint.model, o.rank, "api", (), agent.num_ctx, _NO_ESTIMATE)
    cand: Candidate | None
    if o.placement == "cpu":
        cand, gpus = reqs.cpu[i], []
    else:
        cand = next(c for c in reqs.gpu[i] if c.cost is o.cost)
        gpus = [inv.gpus[positions[d]] for d in o.devices]
    assert cand is not None
    split: tuple[float, ...] = ()
    bandwidth = gpus[0].bandwidth_bytes_per_s if len(gpus) == 1 else None
    if len(gpus) > 1:
        usable = [problem.devices[d].usable_bytes for d in o.devices]
        split = tuple(round(u / sum(usable), 4) for u in usable)
        # layers run one GPU after the other: the time per token adds up over the shares
        if all(g.bandwidth_bytes_per_s for g in gpus):
            bandwidth = round(
                1 / sum(f / (g.bandwidth_bytes_per_s or 1) for f, g in zip(split, gpus, strict=True))
            )
    speed = decode_tokens_per_s(cand.fp, cand.settings, bandwidth) if bandwidth else None
    return AgentPlacement(
        name=agent.name,
        model=cand.ref,
        candidate_rank=cand.rank,
        placement=o.placement,
        gpu_indices=tuple(g.index for g in gpus),
        num_ctx=cand.settings.ctx_tokens,
        estimate=cand.est,
        host=gpus[0].host if gpus else LOCAL,
        model_path=cand.fp.path,
        kv_type=cand.settings.kv_type,
        flash_attn=cand.settings.flash_attn,
        batch=cand.settings.batch,
        ubatch=cand.settings.ubatch,
        tensor_split=split,
        tokens_per_s=round(speed, 1) if speed else None,
        catalog_estimate=cand.fp.is_catalog_estimate,
        slots=cand.settings.parallel,
        draft_path=cand.draft_path,
        draft_bytes=cand.draft_bytes,
        ngram=cand.ngram,
    )


def _gpus(
    inv: Inventory, layout: LayoutConfig, positions: list[int], problem: Problem, solution: Solution
) -> tuple[GpuPlan, ...]:
    device_of = {pos: d for d, pos in enumerate(positions)}
    out = []
    for pos, gpu in enumerate(inv.gpus):
        d = device_of.get(pos)
        load = solution.loads[d] if d is not None else None
        names = tuple(problem.requests[a].agent for a in load.agents) if load else ()
        models = tuple(
            dict.fromkeys(
                o.cost.model
                for a in (load.agents if load else ())
                if (o := solution.choices[a]).cost is not None
            )
        )
        out.append(
            GpuPlan(
                index=gpu.index,
                host=gpu.host,
                name=gpu.name,
                uuid=gpu.uuid,
                total_bytes=gpu.total_bytes,
                usable_bytes=problem.devices[d].usable_bytes if d is not None else 0,
                planned_bytes=load.total_bytes if load else 0,
                excluded=inv.excluded[pos] is not None,
                exclusion_reason=inv.excluded[pos],
                reserve_bytes=layout.reserve_bytes,
                weights_bytes=load.weights_bytes if load else 0,
                kv_cache_bytes=load.kv_cache_bytes if load else 0,
                compute_bytes=load.compute_bytes if load else 0,
                overhead_bytes=load.overhead_bytes if load else 0,
                agents=names,
                models=tuple(_short(m) for m in models),
                pci_bus_id=gpu.pci_bus_id,
                compute_capability=gpu.compute_capability,
                bandwidth_bytes_per_s=gpu.bandwidth_bytes_per_s,
            )
        )
    return tuple(out)


def _cpu(inv: Inventory, problem: Problem, solution: Solution) -> CpuPlan:
    d = next(d for d, dev in enumerate(problem.devices) if dev.is_cpu)
    load = solution.loads[d]
    models = tuple(
        dict.fromkeys(
            _short(o.cost.model) for a in load.agents if (o := solution.choices[a]).cost is not None
        )
    )
    return CpuPlan(
        total_bytes=inv.ram.total_bytes,
        usable_bytes=problem.devices[d].usable_bytes,
        planned_bytes=load.total_bytes,
        agents=tuple(problem.requests[a].agent for a in load.agents),
        models=models,
    )


def _short(model_key: str) -> str:
    """'catalog:qwen3:8b' → 'qwen3:8b'; a file path → its file name."""
    if model_key.startswith("catalog:"):
        return model_key[len("catalog:") :]
    return model_key.rsplit("/", 1)[-1]


__all__ = ["assemble", "share_bytes"]
