"""The greedy first-fit Ollama uses, the baseline the solver is compared with: largest model first, onto the
GPU with most free.

Ollama's scheduler loads each model onto the GPU with the most free memory that holds it, and takes the
models in the order they are asked for; we give it its best case, the largest first. Each agent takes its
best candidate that fits there, else its fallback. Nothing is ever moved again, which is where it loses:
docs/planner.md lists the layouts it fails or does worse on, and tests/test_greedy_baseline.py checks each.
Here, not in crew/planner/: nothing in localcrew places with it; it only measures what the solver gains.
"""

from __future__ import annotations

from crew.planner.problem import Option, Problem, Solution
from crew.planner.solver import evaluate, options


def greedy(problem: Problem) -> Solution:
    n = len(problem.requests)
    opts = [options(problem, i) for i in range(n)]
    order = sorted(range(n), key=lambda i: -max((o.cost.total_bytes for o in opts[i] if o.cost), default=0))
    chosen: dict[int, Option] = {}
    for i in order:
        for rank_opts in _by_rank(opts[i]):
            fitting = [o for o in rank_opts if _fits(problem, chosen, i, o)]
            if fitting:
                chosen[i] = max(fitting, key=lambda o: _free(problem, chosen, o))
                break
    choices = tuple(chosen[i] for i in range(n))
    loads, objective, _ = evaluate(problem, choices)
    return Solution(choices=choices, loads=loads, objective=objective, optimal=False, nodes=0)


def _by_rank(opts: tuple[Option, ...]) -> list[list[Option]]:
    ranks: dict[int, list[Option]] = {}
    for o in opts:
        ranks.setdefault(o.rank, []).append(o)
    return [ranks[r] for r in sorted(ranks)]


def _fits(problem: Problem, chosen: dict[int, Option], i: int, o: Option) -> bool:
    trial = {**chosen, i: o}
    picks = tuple(trial.get(j, Option("none", 0)) for j in range(len(problem.requests)))
    return evaluate(problem, picks)[2]


def _free(problem: Problem, chosen: dict[int, Option], o: Option) -> int:
    """Free memory of the option's GPU(s) before this agent: the quantity Ollama sorts by."""
    picks = tuple(chosen.get(j, Option("none", 0)) for j in range(len(problem.requests)))
    loads = evaluate(problem, picks)[0]
    return min((problem.devices[d].usable_bytes - loads[d].total_bytes for d in o.devices), default=0)
