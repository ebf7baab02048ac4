"""The solver against brute force on small random instances: same optimum, every time.

The brute force is written here from the rules (docs/planner.md), sharing no code with the solver: it lists
every placement of every agent, computes the loads its own way and keeps the lexicographic best (ranks
weighted by each agent's priority).
"""

from __future__ import annotations

from itertools import combinations, product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crew.planner.problem import Device, ModelCost, Problem, Request
from crew.planner.solver import evaluate, solve
from crew.units import GIB

MODELS = {"a": 4, "b": 5, "c": 8, "d": 2}  # weights in GiB/4 units below


def _ceil_share(n: int, d: int, group: tuple[int, ...], usable: list[int]) -> int:
    total = sum(usable[g] for g in group)
    return n if len(group) == 1 else -(-n * usable[d] // total)


def brute_force(p: Problem) -> tuple[int, int, int, int, int]:
    usable = [d.usable_bytes for d in p.devices]
    gpus = [i for i, d in enumerate(p.devices) if not d.is_cpu]
    cpu = [i for i, d in enumerate(p.devices) if d.is_cpu]

    def alone(c: ModelCost, group: tuple[int, ...]) -> bool:
        return all(
            _ceil_share(c.weights_bytes, d, group, usable)
            + _ceil_share(c.kv_cache_bytes, d, group, usable)
            + c.compute_bytes
            + c.overhead_bytes
            <= usable[d]
            for d in group
        )

    per_agent = []
    for r in p.requests:
        opts: list[tuple[str, int, tuple[int, ...], ModelCost | None]] = []
        for rank, c in enumerate(r.candidates):
            single = [("gpu", rank, (d,), c) for d in gpus if alone(c, (d,))]
            opts += single
            if p.allow_split and not single:
                for host in {p.devices[d].host for d in gpus}:
                    mine = [d for d in gpus if p.devices[d].host == host]
                    for k in range(2, min(p.max_split_gpus, len(mine)) + 1):
                        opts += [("split", rank, g, c) for g in combinations(mine, k) if alone(c, g)]
        if r.cpu is not None and cpu and alone(r.cpu, (cpu[0],)):
            opts.append(("cpu", len(r.candidates), (cpu[0],), r.cpu))
        if r.api:
            opts.append(("api", len(r.candidates) + 1, (), None))
        opts.append(("none", len(r.candidates) + 2, (), None))
        per_agent.append(opts)

    best = None
    for combo in product(*per_agent):
        load = [0] * len(usable)
        for d in range(len(usable)):
            insts: dict[tuple[str, tuple[int, ...]], list[ModelCost]] = {}
            for _, _, group, cost in combo:
                if cost is not None and d in group:
                    insts.setdefault((cost.model, group), []).append(cost)
            for (_, group), cs in insts.items():
                load[d] += (
                    _ceil_share(cs[0].weights_bytes, d, group, usable)
                    + _ceil_share(sum(c.kv_cache_bytes for c in cs), d, group, usable)
                    + max(c.compute_bytes for c in cs)
                    + max(c.overhead_bytes for c in cs)  # one server process per model and device
                )
        if any(load[d] > usable[d] for d in range(len(usable))):
            continue
        pairs = sum(
            1
            for a, b in combinations(range(len(combo)), 2)
            if set(combo[a][2]) & set(combo[b][2]) & set(gpus)
        )
        key = (
            sum(o[0] == "none" for o in combo),
            sum(o[0] in ("cpu", "api") for o in combo),
            sum(o[1] * r.priority for o, r in zip(combo, p.requests, strict=True)),
            pairs,
            -min((usable[d] - load[d] for d in gpus), default=0),
        )
        best = key if best is None or key < best else best
    assert best is not None
    return best


def _cost(model: str, kv: int, compute: int) -> ModelCost:
    return ModelCost(model, MODELS[model] * GIB // 4, kv * GIB // 8, compute * GIB // 16, GIB // 8)


costs = st.builds(_cost, st.sampled_from(sorted(MODELS)), st.integers(0, 6), st.integers(0, 3))
requests = st.builds(
    lambda cands, cpu, api, i, priority: Request(f"a{i}", tuple(cands), cpu, api, priority),
    st.lists(costs, min_size=0, max_size=3),
    st.none() | costs,
    st.booleans(),
    st.integers(0, 99),
    st.sampled_from([1, 1, 2, 3]),  # mostly equal, some agents that matter more (the developer's 2)
)


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n_gpu = draw(st.integers(0, 3))
    sizes = [draw(st.sampled_from([2, 3, 4])) * GIB // 2 for _ in range(n_gpu)]  # repeats: twin GPUs
    hosts = [draw(st.sampled_from(["local", "b"])) for _ in range(n_gpu)]
    devs = [Device(f"GPU {i}", s, h) for i, (s, h) in enumerate(zip(sizes, hosts, strict=True))]
    if draw(st.booleans()):
        devs.append(Device("CPU", draw(st.integers(1, 6)) * GIB // 2, is_cpu=True))
    reqs: list[Request] = draw(st.lists(requests, min_size=1, max_size=4))
    twin: bool = draw(st.booleans())
    if twin:  # identical agents, as in fleets
        reqs.append(reqs[0])
    named = tuple(
        Request(f"{r.agent}-{i}", r.candidates, r.cpu, r.api, r.priority) for i, r in enumerate(reqs)
    )
    return Problem(tuple(devs), named, allow_split=draw(st.booleans()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_solver_matches_brute_force(p: Problem) -> None:
    sol = solve(p)
    assert sol.optimal
    loads, objective, feasible = evaluate(p, sol.choices)
    assert feasible and objective == sol.objective
    assert sol.objective.key() == brute_force(p)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_solver_is_deterministic(p: Problem) -> None:
    assert solve(p).choices == solve(p).choices
