"""The layout solver: each agent onto one GPU, a GPU group, its CPU model or its API endpoint — optimally.

Pure: frozen inputs with units in names (problem.py), no IO. The load of a device is
    weights of each distinct model once (agents on the same model and device share one copy)
  + each agent's own KV cache (and output buffer) at its context
  + one compute buffer per loaded model (the largest its agents need)
  + the runtime overhead (CUDA context) once per loaded model: every model is a server process of its own,
    so that all stay resident (a multi-model llama.cpp server keeps one loaded at a time and reloads),
and must stay within the device's usable bytes (the layout's reserve is already taken off). A model split
over a GPU group puts each GPU's share (in proportion to usable memory, like llama.cpp's tensor split) of
weights and KV there, and a whole compute buffer and overhead on every GPU of the group.

Objective, lexicographic (see `Objective.key`): fewest agents unplaced; fewest on a fallback (CPU, API);
smallest sum of candidate ranks, each weighted by its agent's priority (a step down for the developer, of
priority 2 by default, costs as much as two steps of others); fewest pairs of agents sharing a GPU; largest
smallest GPU headroom. Headroom comes last: it only breaks ties, it never buys an agent a lesser model.
Exact branch and bound (search.py) with a node budget; `Solution.optimal` says whether it was proven.
"""

from __future__ import annotations

from itertools import combinations

from crew.planner.problem import DeviceLoad, ModelCost, Objective, Option, Problem, Solution, share_bytes
from crew.planner.search import Search


def fits_alone(cost: ModelCost, group: tuple[int, ...], problem: Problem) -> bool:
    """Whether the model fits the group with nothing else on it."""
    return all(
        share_bytes(cost.weights_bytes, d, group, problem)
        + share_bytes(cost.kv_cache_bytes, d, group, problem)
        + cost.compute_bytes
        + cost.overhead_bytes
        <= problem.devices[d].usable_bytes
        for d in group
    )


def options(problem: Problem, i: int) -> tuple[Option, ...]:
    """Every placement agent `i` could have on an otherwise empty machine, best rank first."""
    req, devs = problem.requests[i], problem.devices
    gpus = [d for d, dev in enumerate(devs) if not dev.is_cpu]
    out: list[Option] = []
    for rank, cost in enumerate(req.candidates):
        singles = [Option("gpu", rank, (d,), cost) for d in gpus if fits_alone(cost, (d,), problem)]
        out += singles
        if problem.allow_split and not singles:  # a split only for a model no single GPU can host
            for host in sorted({devs[d].host for d in gpus}):
                on_host = [d for d in gpus if devs[d].host == host]
                for size in range(2, min(problem.max_split_gpus, len(on_host)) + 1):
                    out += [
                        Option("split", rank, g, cost)
                        for g in combinations(on_host, size)
                        if fits_alone(cost, g, problem)
                    ]
    cpu = next((d for d, dev in enumerate(devs) if dev.is_cpu), None)
    if req.cpu is not None and cpu is not None and fits_alone(req.cpu, (cpu,), problem):
        out.append(Option("cpu", req.cpu_rank, (cpu,), req.cpu))
    if req.api:
        out.append(Option("api", req.api_rank))
    out.append(Option("none", req.none_rank))
    return tuple(out)


def evaluate(problem: Problem, choices: tuple[Option, ...]) -> tuple[tuple[DeviceLoad, ...], Objective, bool]:
    """Loads, objective and feasibility of a complete assignment: the reference for the load formula."""
    inst: list[dict[tuple[str, tuple[int, ...]], list[int]]] = [{} for _ in problem.devices]
    on: list[list[int]] = [[] for _ in problem.devices]
    for i, o in enumerate(choices):
        if o.cost is None:
            continue
        for d in o.devices:
            e = inst[d].setdefault((o.cost.model, o.devices), [o.cost.weights_bytes, 0, 0, 0])
            e[1] += o.cost.kv_cache_bytes
            e[2] = max(e[2], o.cost.compute_bytes)
            e[3] = max(e[3], o.cost.overhead_bytes)
            on[d].append(i)
    loads = tuple(
        DeviceLoad(
            weights_bytes=sum(share_bytes(e[0], d, g, problem) for (_, g), e in inst[d].items()),
            kv_cache_bytes=sum(share_bytes(e[1], d, g, problem) for (_, g), e in inst[d].items()),
            compute_bytes=sum(e[2] for e in inst[d].values()),
            overhead_bytes=sum(e[3] for e in inst[d].values()),
            agents=tuple(on[d]),
        )
        for d in range(len(problem.devices))
    )
    feasible = all(ld.total_bytes <= dev.usable_bytes for ld, dev in zip(loads, problem.devices, strict=True))
    gpus = [d for d, dev in enumerate(problem.devices) if not dev.is_cpu]
    pairs = {(a, b) for d in gpus for a, b in combinations(sorted(on[d]), 2)}
    objective = Objective(
        unplaced=sum(o.placement == "none" for o in choices),
        fallbacks=sum(o.placement in ("cpu", "api") for o in choices),
        rank_sum=sum(o.rank * r.priority for o, r in zip(choices, problem.requests, strict=True)),
        shared_pairs=len(pairs),
        min_headroom_bytes=min(
            (problem.devices[d].usable_bytes - loads[d].total_bytes for d in gpus), default=0
        ),
    )
    return loads, objective, feasible


def solve(problem: Problem) -> Solution:
    """The optimal assignment (or, past the node budget, the best found, with `optimal=False`)."""
    search = Search(problem, tuple(options(problem, i) for i in range(len(problem.requests))))
    choices = search.run()
    loads, objective, feasible = evaluate(problem, choices)
    assert feasible, "the search only builds feasible assignments"
    return Solution(
        choices=choices, loads=loads, objective=objective, optimal=not search.aborted, nodes=search.nodes,
        proven_levels=search.proven
    )
