"""From the project's files to a Plan: inventory → requests → estimates → solve → plan. The adapter layer.

It does the IO the solver must not: reading the inventory (profile, declared GPUs or NVML), resolving model
references to footprints, estimating each candidate at its agent's context, and re-estimating the variants
that suggestions try. Nothing here imports crewai, litellm or llama_cpp: `plan-gpus` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from crew.config import AgentConfig, LayoutConfig, ProjectConfig
from crew.config.types import NGRAM_DRAFT
from crew.errors import LocalcrewError
from crew.hardware.inventory import load_inventory, system_memory
from crew.hardware.nvml import NvmlProvider
from crew.hardware.types import Inventory, Memory
from crew.models.footprint import ModelFootprint
from crew.planner.assemble import Candidate, Requests, assemble
from crew.planner.plan import LeftOut, Plan
from crew.planner.problem import Device, ModelCost, Problem, Request, Solution
from crew.planner.solver import solve
from crew.planner.suggest import Fix
from crew.planner.vram import DRAFT_MAX_TOKENS, RunSettings, VramEstimate, estimate
from crew.units import gib

NO_CPU = ("none", "off", "")


def plan_project(
    project: ProjectConfig,
    *,
    profile: str | None = None,
    nvml: NvmlProvider | None = None,
    ram: Callable[[], Memory] = system_memory,
) -> Plan:
    """The plan for a project: GPUs from the profile, the layout's declared GPUs, or NVML (none → CPU)."""
    return plan_for(project.agents, project.layout, profile=profile, nvml=nvml, ram=ram)


def plan_for_run(project: ProjectConfig, plan_file: Path | None = None) -> Plan:
    """A plan saved by `plan-gpus --save` (argument or LOCALCREW_PLAN), else the same plan computed now."""
    from crew.planner.saved import SAVE_HINT, read_saved_plan

    path = plan_file or (Path(os.environ["LOCALCREW_PLAN"]) if os.environ.get("LOCALCREW_PLAN") else None)
    if path is None:
        return plan_project(project)
    return read_saved_plan(path, fix=SAVE_HINT + ", or unset LOCALCREW_PLAN")


def plan_for(
    agents: Mapping[str, AgentConfig],
    layout: LayoutConfig,
    *,
    profile: str | None = None,
    nvml: NvmlProvider | None = None,
    ram: Callable[[], Memory] = system_memory,
) -> Plan:
    from crew.hardware.backend import choose_backend

    backend, why = choose_backend(layout.backend)
    layout = replace(layout, backend=backend)
    notes: list[str] = [why] if why.startswith("backend auto") else []
    if not serves_slots(backend):
        # llama-cpp-python's server answers one request at a time: extra slots would be memory never used
        if any(a.slots > 1 for a in agents.values()):
            notes.append("one request at a time per server: no llama-server was built (bash scripts/setup.sh "
                         "builds it), so llama-cpp-python's server serves")
        agents = {n: replace(a, slots=1) for n, a in agents.items()}
    inv = load_inventory(layout, profile=profile, nvml=nvml, ram=ram)
    devices, positions = _devices(inv, layout)
    # llama-server reserves logits for one token per slot, not per micro-batch token (vram.py)
    base = RunSettings(kv_type=layout.kv_type, outputs_per_slot=1 if backend == "llamacpp" and
                       serves_slots(backend) else 0)
    have_gpus = any(not d.is_cpu for d in devices)
    agents, problem, solution, reqs, fewer = _solve_with_slots(agents, base, devices, layout, have_gpus)
    notes += fewer
    plan = assemble(
        inv,
        layout,
        positions,
        problem,
        solution,
        reqs,
        list(agents.values()),
        lambda i: _fixes(list(agents.values())[i], i, reqs, problem, solution),
        lambda i: _upgrades(list(agents.values())[i], i, reqs, problem),
    )
    return replace(plan, notes=(*plan.notes, *notes)) if notes else plan


def serves_slots(backend: str) -> bool:
    """Does this backend decode several requests of one server at once? Ollama (OLLAMA_NUM_PARALLEL) and
    llama-server do; llama-cpp-python's server does not."""
    from crew.models.server_binary import find_server_binary

    return backend == "ollama" or find_server_binary() is not None


def _solve_once(agents: Mapping[str, AgentConfig], base: RunSettings, devices: tuple[Device, ...],
                layout: LayoutConfig, have_gpus: bool) -> tuple[Problem, Solution, Requests]:
    # CPU models only matter when a GPU cannot take everyone: with every agent on a GPU the plan is optimal
    # with or without CPU options (a fallback is never better), and skipping them spares `plan-gpus` the
    # GGUF reader's numpy import on every rig that does not need it.
    reqs = _requests(agents, base, have_gpus, with_cpu=not have_gpus)
    problem = Problem(devices=devices, requests=tuple(reqs.requests), allow_split=layout.allow_split)
    solution = solve(problem)
    if have_gpus and any(o.placement in ("none", "api") for o in solution.choices):
        reqs = _requests(agents, base, have_gpus, with_cpu=True)
        problem = replace(problem, requests=tuple(reqs.requests))
        solution = solve(problem)
    return problem, solution, reqs


def _solve_with_slots(
    agents: Mapping[str, AgentConfig], base: RunSettings, devices: tuple[Device, ...], layout: LayoutConfig,
    have_gpus: bool,
) -> tuple[Mapping[str, AgentConfig], Problem, Solution, Requests, list[str]]:
    """Solve with every agent's slots; an agent with several slots that did not get its first model (or a
    GPU) is tried with half as many, down to one, and keeps the fewer slots only where that places it
    better. Each slot's KV cache is counted (RunSettings.parallel), so a plan never promises slots it has
    no memory for; what was cut is said in the plan's notes."""
    problem, solution, reqs = _solve_once(agents, base, devices, layout, have_gpus)
    notes: list[str] = []
    names = list(agents)
    for i, name in enumerate(names if have_gpus else ()):
        wanted = agents[name].slots
        while agents[name].slots > 1 and _rank(solution, i) > 0:
            fewer = {**agents, name: replace(agents[name], slots=agents[name].slots // 2)}
            p2, s2, r2 = _solve_once(fewer, base, devices, layout, have_gpus)
            if _rank(s2, i) >= _rank(solution, i):
                break
            agents, problem, solution, reqs = fewer, p2, s2, r2
        if agents[name].slots < wanted:
            notes.append(f"{name}: {agents[name].slots} slot(s) instead of {wanted} (agents.yaml `slots`): the "
                         f"KV cache of {wanted} does not fit beside the other agents")
    return agents, problem, solution, reqs, notes


def _rank(solution: Solution, i: int) -> int:
    """How far down its list agent i was placed: 0 its first model on a GPU; CPU, API and none after."""
    o = solution.choices[i]
    return {"none": 10**6, "api": 10**5, "cpu": 10**4}.get(o.placement, o.rank)


def _devices(inv: Inventory, layout: LayoutConfig) -> tuple[tuple[Device, ...], list[int]]:
    """Usable GPUs (excluded ones left out) and the CPU; `positions` maps each GPU device to inv.gpus."""
    devices, positions = [], []
    for pos, gpu in enumerate(inv.gpus):
        if inv.excluded[pos] is None:
            devices.append(Device(gpu.label, inv.usable_bytes(pos, layout.reserve_bytes), gpu.host))
            positions.append(pos)
    devices.append(Device("CPU", inv.ram_usable_bytes, is_cpu=True))
    return tuple(devices), positions


def _requests(
    agents: Mapping[str, AgentConfig], base: RunSettings, have_gpus: bool, *, with_cpu: bool
) -> Requests:
    out = Requests([], [], [], [])
    cache: dict[str, ModelFootprint | LocalcrewError] = {}
    for agent in agents.values():
        gpu: list[Candidate] = []
        if have_gpus:  # no GPU: the candidates cannot matter, and unknown tags are not worth a warning
            for rank, ref in enumerate(agent.candidates):
                cand = _candidate(ref, rank, agent, replace(base, device="cuda"), cache, out.left_out)
                if cand is not None:
                    gpu.append(cand)
        cpu = None
        if with_cpu and agent.cpu_model.lower() not in NO_CPU:
            cpu = _candidate(
                agent.cpu_model,
                len(agent.candidates),
                agent,
                replace(base, device="cpu", kv_type="f16"),
                cache,
                out.left_out,
            )
        out.gpu.append(gpu)
        out.cpu.append(cpu)
        out.requests.append(
            Request(agent.name, tuple(c.cost for c in gpu), cpu.cost if cpu else None, agent.api is not None,
                    agent.priority)
        )
    return out


def _recost(
    cands: list[Candidate],
    agent: AgentConfig,
    cache: dict[str, ModelFootprint | LocalcrewError],
    left_out: list[LeftOut],
    *,
    ctx: int | None = None,
    kv_type: str | None = None,
) -> tuple[ModelCost, ...]:
    """The same candidates re-estimated at another context or KV type (to check a suggested way out)."""
    out = []
    for c in cands:
        settings = replace(c.settings, kv_type=kv_type) if kv_type else c.settings
        again = _candidate(c.ref, c.rank, agent, settings, cache, left_out, ctx=ctx or c.settings.ctx_tokens)
        if again is not None:
            out.append(again.cost)
    return tuple(out)


def _candidate(
    ref: str,
    rank: int,
    agent: AgentConfig,
    settings: RunSettings,
    cache: dict[str, ModelFootprint | LocalcrewError],
    left_out: list[LeftOut],
    ctx: int | None = None,
) -> Candidate | None:
    fp = _footprint(ref, cache)
    if isinstance(fp, LocalcrewError):
        left_out.append(_left_out(agent, ref, fp))
        return None
    want = ctx or agent.num_ctx
    s = replace(settings, ctx_tokens=min(want, fp.n_ctx_train) if fp.n_ctx_train else want, parallel=agent.slots)
    if agent.draft_model and agent.draft_model != NGRAM_DRAFT and s.outputs_per_slot:  # the target scores them too
        s = replace(s, outputs_per_slot=s.outputs_per_slot + DRAFT_MAX_TOKENS)
    try:
        est = estimate(fp, s)
    except LocalcrewError as err:
        left_out.append(_left_out(agent, ref, err))
        return None
    draft = _draft(agent, s, cache, left_out)
    # Weights are shared by agents on the same file (or catalog tag); the output buffer is per context. A draft
    # model sits beside its target on the same device, with a context (KV cache) per slot of its own.
    cost = ModelCost(
        model=fp.path or f"catalog:{fp.name}",
        weights_bytes=est.weights_bytes + (draft[1].weights_bytes if draft else 0),
        kv_cache_bytes=est.kv_cache_bytes + est.output_bytes + (draft[1].kv_cache_bytes if draft else 0),
        compute_bytes=est.compute_bytes + (draft[1].compute_bytes if draft else 0),
        overhead_bytes=est.overhead_bytes,
        label=ref,
    )
    return Candidate(ref, rank, fp, s, est, cost, draft_path=draft[0] if draft else None,
                     draft_bytes=draft[1].total_bytes if draft else 0, ngram=agent.draft_model == NGRAM_DRAFT)


def _footprint(ref: str, cache: dict[str, ModelFootprint | LocalcrewError]) -> ModelFootprint | LocalcrewError:
    """A model reference's footprint, or why it cannot be read; each reference resolved once per plan."""
    from crew.models.resolve import resolve_footprint

    if ref not in cache:
        try:
            cache[ref] = resolve_footprint(ref)
        except LocalcrewError as err:
            cache[ref] = err
    return cache[ref]


def _draft(agent: AgentConfig, s: RunSettings, cache: dict[str, ModelFootprint | LocalcrewError],
           left_out: list[LeftOut]) -> tuple[str, VramEstimate] | None:
    """The agent's draft model (agents.yaml `draft_model`), estimated at the target's settings; None when it
    has none or it cannot be read (said in the plan: the agent then runs without a draft)."""
    ref = agent.draft_model
    if not ref or ref == NGRAM_DRAFT:  # n-grams of the context: no model to place
        return None
    fp = _footprint(ref, cache)
    if isinstance(fp, LocalcrewError) or not fp.path:
        left_out.append(_left_out(agent, ref, fp) if isinstance(fp, LocalcrewError) else
                        LeftOut(agent.name, ref, "a draft model must be a local GGUF file", "pull it first"))
        return None
    try:
        return fp.path, estimate(fp, replace(s, ctx_tokens=min(s.ctx_tokens, fp.n_ctx_train or s.ctx_tokens)))
    except LocalcrewError as err:
        left_out.append(_left_out(agent, ref, err))
        return None


def _left_out(agent: AgentConfig, ref: str, err: LocalcrewError) -> LeftOut:
    # the where of a model error is the ref itself or the word "model": the ref already says it
    where = err.where if err.where not in (None, "model", ref, ref.removeprefix("ollama/")) else None
    return LeftOut(agent.name, ref, f"{where}: {err.what}" if where else err.what, err.fix or "")


def _fixes(agent: AgentConfig, i: int, reqs: Requests, problem: Problem, solution: Solution) -> list[Fix]:
    """Variants of the agent's request that suggestions try: each re-estimated here, checked there."""
    from crew.models.catalog import lookup, quant_variants
    from crew.models.resolve import strip_provider

    cands, req = reqs.gpu[i], problem.requests[i]
    fixes: list[Fix] = []
    cache: dict[str, ModelFootprint | LocalcrewError] = {}
    quiet: list[LeftOut] = []
    if not cands:
        return fixes
    prefix = "ollama/" if cands[0].ref.startswith("ollama/") else ""
    own = {strip_provider(c.ref).lower() for c in cands}
    for c in cands:
        for tag in reversed(quant_variants(strip_provider(c.ref))):  # best quality that works first
            if tag.lower() in own:
                continue
            v = _candidate(prefix + tag, c.rank, agent, c.settings, cache, quiet, ctx=c.settings.ctx_tokens)
            if v is not None and v.cost.total_bytes < c.cost.total_bytes:
                fixes.append(
                    Fix(
                        f"use the smaller quant {prefix}{tag} ({gib(v.cost.total_bytes)} at ctx "
                        f"{v.settings.ctx_tokens}): add it to {agent.name}'s fallbacks in agents.yaml",
                        replace(req, candidates=(*req.candidates, v.cost)),
                        group=f"quant:{c.ref}",
                    )
                )
    ctx = cands[0].settings.ctx_tokens // 2
    while ctx >= 2048:
        costs = _recost(cands, agent, cache, quiet, ctx=ctx)
        fixes.append(
            Fix(
                f"a shorter context: `num_ctx: {ctx}` for {agent.name} (its best candidate then needs "
                f"{gib(costs[0].total_bytes)})",
                replace(req, candidates=costs),
                group="ctx",
            )
        )
        ctx //= 2
    if cands[0].settings.kv_type == "f16":
        costs = _recost(cands, agent, cache, quiet, kv_type="q8_0")
        fixes.append(
            Fix(
                f"a q8_0 KV cache (`kv_type: q8_0` in gpu_layout.yaml; its best candidate then needs "
                f"{gib(costs[0].total_bytes)})",
                replace(req, candidates=costs),
            )
        )
    # A model another agent already has on a GPU costs this agent only its own KV cache there: the weights
    # are loaded once. (A 4 GB laptop GPU holds the developer's 1.5B coder for all four agents.)
    # Only the first that works is offered: the agent's own model family first (a coder for the developer).
    def family(ref: str) -> str | None:
        entry = lookup(strip_provider(ref))
        return str(entry.model["name"]) if entry else None

    own_families = {family(c.ref) for c in cands} - {None}
    shared = {c.ref for c in cands}
    order = sorted(range(len(solution.choices)), key=lambda j: (
        next((family(c.ref) not in own_families for c in reqs.gpu[j] if c.cost is solution.choices[j].cost),
             True), j))
    for j in order:
        o = solution.choices[j]
        placed = next((c for c in reqs.gpu[j] if c.cost is o.cost), None) if j != i else None
        if placed is None or placed.ref in shared:
            continue
        shared.add(placed.ref)
        share = _candidate(placed.ref, len(agent.candidates), agent, cands[0].settings, cache, quiet,
                           ctx=cands[0].settings.ctx_tokens)
        if share is not None:
            where = "GPUs " + "+".join(map(str, o.devices)) if len(o.devices) > 1 else f"GPU {o.devices[0]}"
            fixes.append(
                Fix(
                    f"share {placed.ref}, which {problem.requests[j].agent} already has on {where}: add it to "
                    f"{agent.name}'s fallbacks (its own KV cache there: {gib(share.cost.kv_cache_bytes)})",
                    replace(req, candidates=(*req.candidates, share.cost)),
                    group="share",
                )
            )
    return fixes


def _upgrades(agent: AgentConfig, i: int, reqs: Requests, problem: Problem) -> list[Fix]:
    """Bigger models of the family of the agent's first choice (catalog), largest first, each put first in
    its request: suggest.upgrades keeps those the headroom takes without changing any other agent."""
    from crew.models.catalog import bigger_models
    from crew.models.resolve import strip_provider

    cands = reqs.gpu[i]
    if not cands:
        return []
    first = cands[0]
    prefix = "ollama/" if first.ref.startswith("ollama/") else ""
    out, cache, quiet = [], {}, []  # type: ignore[var-annotated]
    for tag in bigger_models(strip_provider(first.ref)):
        big = _candidate(prefix + tag, 0, agent, first.settings, cache, quiet, ctx=agent.num_ctx)
        if big is not None:
            out.append(Fix(
                f"{agent.name} could run the bigger {prefix}{tag} ({gib(big.cost.total_bytes)} at ctx "
                f"{big.settings.ctx_tokens}) in the free memory, no other agent's model changing: make it its `llm` "
                f"and {first.ref} its first fallback",
                replace(problem.requests[i], candidates=(big.cost, *problem.requests[i].candidates)),
                group="upgrade",
            ))
    return out
