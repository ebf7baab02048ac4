"""The solver's problem and answer as frozen data: devices, each agent's costed candidates, and the loads.

Here, not in solver.py, so that the search (search.py), the solver that runs it and the planner that builds
problems and reads solutions (build.py, assemble.py, suggest.py) all import the types from one module that
imports none of them. `share_bytes` is here too: the load formula's split rule, used by the solver's
reference evaluation and by the search's incremental loads alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crew.units import LOCAL

Placement = Literal["gpu", "split", "cpu", "api", "none"]


@dataclass(frozen=True)
class Device:
    label: str  # for messages: "GPU 2 (RTX 3060)", "CPU"
    usable_bytes: int
    host: str = LOCAL
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
