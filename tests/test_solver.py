"""The solver on hand-made layouts: the load formula, splits, fallbacks, priorities. The greedy-vs-optimal
corpus of docs/planner.md is in test_greedy_baseline.py."""

from __future__ import annotations

from crew.planner.problem import Device, ModelCost, Problem, Request, Solution
from crew.planner.solver import evaluate, options, solve
from crew.units import GIB, LOCAL


def m(model: str, weights: float, kv: float, compute: float = 0.0, overhead: float = 0.0) -> ModelCost:
    return ModelCost(
        model, round(weights * GIB), round(kv * GIB), round(compute * GIB), round(overhead * GIB)
    )


def gpus(*usable: float, host: str = LOCAL) -> tuple[Device, ...]:
    return tuple(Device(f"GPU {i}", round(u * GIB), host) for i, u in enumerate(usable))


CPU = Device("CPU", 32 * GIB, is_cpu=True)
TINY = m("embedded", 0.1, 0.2)


def test_load_formula_shares_weights_not_kv() -> None:
    coder = m("coder", 4, 1, compute=0.3, overhead=0.4)
    coder_long = m("coder", 4, 2, compute=0.5, overhead=0.4)
    p = Problem(gpus(12), (Request("dev", (coder_long,)), Request("tester", (coder,))))
    sol = solve(p)
    (load,) = sol.loads
    # weights once, both KV caches, the larger compute buffer, the overhead once
    assert (load.weights_bytes, load.kv_cache_bytes) == (4 * GIB, 3 * GIB)
    assert load.compute_bytes == round(0.5 * GIB) and load.overhead_bytes == round(0.4 * GIB)
    assert sol.objective.shared_pairs == 1 and sol.optimal


def test_agents_spread_over_gpus_when_they_can() -> None:
    a = m("a", 4, 1)
    p = Problem(gpus(12, 12, 12), tuple(Request(f"x{i}", (a,)) for i in range(3)))
    sol = solve(p)
    assert sorted(o.devices for o in sol.choices) == [(0,), (1,), (2,)]
    assert sol.objective.shared_pairs == 0


def test_split_only_when_no_single_gpu_can_host_it() -> None:
    big = m("70b", 18, 2)
    small = m("8b", 5, 1)
    assert all(
        o.placement != "split"
        for o in options(Problem(gpus(12, 12), (Request("a", (small,)),), allow_split=True), 0)
    )
    no = solve(Problem(gpus(12, 12), (Request("a", (big,), TINY),), allow_split=False))
    assert no.choices[0].placement == "none"
    yes = solve(Problem(gpus(12, 12), (Request("a", (big,)),), allow_split=True))
    assert yes.choices[0].placement == "split" and yes.choices[0].devices == (0, 1)
    assert [ld.weights_bytes for ld in yes.loads] == [9 * GIB, 9 * GIB]  # in proportion to usable memory


def test_split_groups_stay_on_one_host() -> None:
    big = m("70b", 18, 2)
    devs = (*gpus(12, host="a"), *gpus(12, host="b"))
    sol = solve(Problem(devs, (Request("a", (big,)),), allow_split=True))
    assert sol.choices[0].placement == "none"


def test_fallbacks_only_when_no_gpu_option_is_left() -> None:
    a = m("a", 8, 2)
    reqs = (
        Request("x", (a,), TINY, api=True),
        Request("y", (a,), TINY, api=True),
        Request("z", (m("b", 9, 2),), None, api=True),
    )
    sol = solve(Problem((*gpus(11), CPU), reqs))
    kinds = [o.placement for o in sol.choices]
    # z has no CPU model: the GPU goes to z, so that x and y take the CPU rather than one of them the API
    assert kinds == ["cpu", "cpu", "gpu"]


def test_unplaced_when_nothing_fits() -> None:
    sol = solve(Problem(gpus(8), (Request("x", (m("a", 9, 1),)),)))
    assert sol.choices[0].placement == "none" and sol.objective.unplaced == 1


def test_node_budget_gives_best_found_not_proven() -> None:
    a, b = m("a", 3, 1), m("b", 3, 1)
    reqs = tuple(Request(f"r{i}", (a, b) if i % 2 else (b, a)) for i in range(8))
    sol = solve(Problem(gpus(9, 9, 9), reqs, node_limit=10))
    assert not sol.optimal and evaluate(Problem(gpus(9, 9, 9), reqs), sol.choices)[2]
    assert sol.proven_levels < 5
    assert solve(Problem(gpus(9, 9, 9), reqs)).proven_levels == 5


def test_priority_buys_the_first_choice_over_unused_headroom() -> None:
    """The 3090 case in small: the developer's 14B fits if documentation takes the manager's model (its
    fallback, shared weights). Both plans step one agent down once; by headroom alone the developer loses
    its 14B. Weighted by priority (developer 2), its step down costs more than documentation's."""
    q8b, llama = m("qwen3:8b", 3, 1), m("llama3.1:8b", 3, 1)
    big, small = m("14b", 6.5, 1), m("7b", 3, 1)

    def plan(developer_priority: int) -> Solution:
        reqs = (
            Request("manager", (q8b,)),
            Request("developer", (big, small), priority=developer_priority),
            Request("documentation", (llama, q8b)),
        )
        return solve(Problem(gpus(13), reqs))

    equal, weighted = plan(1), plan(2)
    assert [o.rank for o in equal.choices] == [0, 1, 0]  # 12 GiB planned, 1 GiB left: headroom decides
    assert [o.rank for o in weighted.choices] == [0, 0, 1]  # the 14B: 12.5 GiB planned
    assert equal.objective.rank_sum == weighted.objective.rank_sum == 1  # the other plan would cost 2
