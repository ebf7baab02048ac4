"""The greedy-vs-optimal corpus documented in docs/planner.md: each case, what Ollama-style greedy
(benchmarks/greedy_baseline.py) does, and what the solver does."""

from __future__ import annotations

from benchmarks.greedy_baseline import greedy
from crew.planner.problem import Problem, Request
from crew.planner.solver import solve
from tests.test_solver import CPU, TINY, gpus, m


def test_corpus_1_greedy_starves_the_second_agent() -> None:
    """One GPU with 11 GiB. The largest agent grabs its best model (9 GiB); the other no longer fits and
    falls back to the CPU. Optimal: the first takes its second choice (5) and both run on the GPU."""
    a = Request("developer", (m("14b", 8, 1), m("7b", 4, 1)), TINY)
    b = Request("tester", (m("8b", 5, 1), m("7b-q3", 4, 1)), TINY)
    p = Problem((*gpus(11), CPU), (a, b))
    g, s = greedy(p), solve(p)
    assert [o.placement for o in g.choices] == ["gpu", "cpu"]
    assert [o.placement for o in s.choices] == ["gpu", "gpu"] and s.objective.rank_sum == 1


def test_corpus_2_most_free_memory_is_the_wrong_gpu() -> None:
    """RTX 3090 (23 usable) + RTX 3060 (11). Greedy puts the 11 GiB coder on the emptiest card, the 3090,
    then a 6.5 GiB agent there too; the third 6.5 GiB agent fits nowhere. Optimal: the coder alone on the
    3060, the three 6.5 GiB agents on the 3090."""
    reqs = (
        Request("developer", (m("14b", 9, 2),), TINY),
        *(Request(n, (m(n, 5.5, 1),), TINY) for n in ("manager", "tester", "documentation")),
    )
    p = Problem((*gpus(23, 11), CPU), reqs)
    g, s = greedy(p), solve(p)
    assert g.objective.fallbacks == 1
    assert s.objective.fallbacks == 0 and s.choices[0].devices == (1,)


def test_corpus_3_sharing_a_model_places_one_more_agent() -> None:
    """Two 10 GiB GPUs, three agents on the same 4 GiB coder (2 GiB KV each) and one on a 5.5 GiB model.
    Greedy spreads the coder agents over both GPUs, loading the coder twice, and the last agent no longer
    fits. Optimal: the three coder agents share one copy on GPU 0 (10 GiB), the other runs on GPU 1."""
    coder = m("coder", 4, 2)
    reqs = (
        *(Request(n, (coder,), TINY) for n in ("developer", "tester", "reviewer")),
        Request("manager", (m("8b", 5, 0.5),), TINY),
    )
    p = Problem((*gpus(10, 10), CPU), reqs)
    g, s = greedy(p), solve(p)
    assert g.objective.fallbacks == 1
    assert s.objective.fallbacks == 0
    assert {o.devices for o in s.choices[:3]} == {s.choices[0].devices}


def test_corpus_4_balance_after_ranks() -> None:
    """Same models, same ranks: the solver keeps the smallest headroom as large as it can (here by putting
    the two large agents on different GPUs), where greedy's order leaves one GPU nearly full."""
    reqs = (
        Request("a", (m("a", 6, 1),)),
        Request("b", (m("b", 2, 1),)),
        Request("c", (m("c", 2, 1),)),
        Request("d", (m("d", 6, 1),)),
    )
    p = Problem(gpus(12, 12), reqs)
    s = solve(p)
    assert s.objective.min_headroom_bytes >= greedy(p).objective.min_headroom_bytes
    assert s.choices[0].devices != s.choices[3].devices
