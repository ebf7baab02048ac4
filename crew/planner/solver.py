"""The layout solver: each agent onto one GPU, a GPU group, its CPU model or its API endpoint — optimally.

Pure: frozen inputs with units in names, no IO. The load of a device is
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

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

Placement = Literal["gpu", "split", "cpu", "api", "none"]


@dataclass(frozen=True)
class Device:
    label: str  # for messages: "GPU 2 (RTX 3060)", "CPU"
    usable_bytes: int
    host: str = "local"
    is_cpu: bool = False


@dataclass(frozen=True)
class ModelCost:
    """One model run for one agent. Agents whose `model` is equal share the weights on a device."""

    model: str
    weights_bytes: int
    kv_cache_bytes: int  # this agent's own context: KV cache and output buffer
    compute_bytes: int
    overhead_bytes: int
    label: str = ""  # for messages: the reference the user wrote

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes


@dataclass(frozen=True)
class Request:
    agent: str
    candidates: tuple[ModelCost, ...]  # for a GPU, best first; the index is the rank
    cpu: ModelCost | None = None  # the CPU model, if the agent may fall back to the CPU
    api: bool = False  # may fall back to a declared OpenAI-compatible endpoint
    priority: int = 1  # weight of this agent's rank in the objective (agents.yaml `priority`, >= 1)

    # Fallbacks rank after every candidate, the API after the CPU, "unplaced" last.
    @property
    def cpu_rank(self) -> int:
        return len(self.candidates)

    @property
    def api_rank(self) -> int:
        return len(self.candidates) + 1

    @property
    def none_rank(self) -> int:
        return len(self.candidates) + 2


@dataclass(frozen=True)
class Problem:
    devices: tuple[Device, ...]  # usable GPUs (excluded ones left out) and at most one CPU
    requests: tuple[Request, ...]
    allow_split: bool = False
    max_split_gpus: int = 4
    node_limit: int = 5_000   # ~0.6 s of search here; a 4-agent rig needs under 100


@dataclass(frozen=True)
class Option:
    placement: Placement
    rank: int
    devices: tuple[int, ...] = ()  # positions in Problem.devices
    cost: ModelCost | None = None


@dataclass(frozen=True)
class DeviceLoad:
    weights_bytes: int = 0
    kv_cache_bytes: int = 0
    compute_bytes: int = 0
    overhead_bytes: int = 0
    agents: tuple[int, ...] = ()  # positions in Problem.requests

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes


@dataclass(frozen=True)
class Objective:
    unplaced: int
    fallbacks: int
    rank_sum: int  # sum of rank x priority
    shared_pairs: int
    min_headroom_bytes: int

    def key(self) -> tuple[int, int, int, int, int]:
        """Smaller is better, compared left to right."""
        return (self.unplaced, self.fallbacks, self.rank_sum, self.shared_pairs, -self.min_headroom_bytes)


@dataclass(frozen=True)
class Solution:
    choices: tuple[Option, ...]  # aligned with Problem.requests
    loads: tuple[DeviceLoad, ...]  # aligned with Problem.devices
    objective: Objective
    optimal: bool  # False when the node budget ran out first: best found, not proven
    nodes: int
    proven_levels: int = 5  # leading levels of Objective.key proven optimal (they meet the lower bound)


def share_bytes(n_bytes: int, device: int, group: tuple[int, ...], problem: Problem) -> int:
    """A device's share of a split model's bytes, rounded up (in proportion to usable memory)."""
    if len(group) == 1:
        return n_bytes
    total = sum(problem.devices[d].usable_bytes for d in group)
    return -(-n_bytes * problem.devices[device].usable_bytes // total) if total else n_bytes


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
    from crew.planner.search import Search

    search = Search(problem, tuple(options(problem, i) for i in range(len(problem.requests))))
    choices = search.run()
    loads, objective, feasible = evaluate(problem, choices)
    assert feasible, "the search only builds feasible assignments"
    return Solution(
        choices=choices, loads=loads, objective=objective, optimal=not search.aborted, nodes=search.nodes,
        proven_levels=search.proven
    )
