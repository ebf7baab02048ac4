"""Why an agent could not be placed (or only on a fallback), in numbers, and ways out that really work.

Every way out is checked by solving the changed problem again: a smaller quant, a shorter context, a q8_0
KV cache, sharing another agent's model (all built by build.py, which can re-estimate), more memory on
one GPU and allowing a split (built here). Only those that place the agent without unplacing another
are offered. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from crew.planner.problem import Option, Problem, Request, Solution
from crew.planner.solver import fits_alone, options, solve
from crew.units import gib

# What a way out must achieve for the agent: any placement (it was unplaced), a GPU (it got a CPU or API
# fallback), or its first choice (it got a lesser candidate).
Goal = Literal["placed", "gpu", "first"]

MIB = 1024**2
CHECK_NODES = 2_000  # each check is a full solve; a smaller budget keeps a dozen of them quick


@dataclass(frozen=True)
class MoreMemory:
    """A fix that gives one device more usable memory."""

    device: int  # position in Problem.devices
    extra_bytes: int


@dataclass(frozen=True)
class Fix:
    text: str  # the change, in the user's terms, with its numbers
    request: Request | None = None  # replaces the agent's request
    allow_split: bool = False
    group: str = ""  # of fixes sharing a group, only the first that works is offered
    extra: MoreMemory | None = None
    variant_of_first: bool = False  # the candidate it appends is the first choice in another form (a quant)


def reason(problem: Problem, solution: Solution, i: int, ctx: int) -> str:
    """'needs 13.1 GiB at ctx 16384 (its smallest candidate, x); largest usable 11.4 GiB on GPU 2 (...)'."""
    req = problem.requests[i]
    gpus = [d for d, dev in enumerate(problem.devices) if not dev.is_cpu]
    parts = []
    if not req.candidates:
        parts.append("no GPU candidate could be estimated")
    elif not gpus:
        parts.append("there is no usable GPU")
    else:
        small = min(req.candidates, key=lambda c: c.total_bytes)
        big = max(gpus, key=lambda d: problem.devices[d].usable_bytes)
        which = "its only candidate" if len(req.candidates) == 1 else "its smallest candidate"
        parts.append(
            f"needs {gib(small.total_bytes)} at ctx {ctx} ({which}, {small.label or small.model}); "
            "largest usable "
            f"{gib(problem.devices[big].usable_bytes)} on {problem.devices[big].label}"
        )
        if small.total_bytes <= problem.devices[big].usable_bytes:
            room = max(gpus, key=lambda d: problem.devices[d].usable_bytes - solution.loads[d].total_bytes)
            left = problem.devices[room].usable_bytes - solution.loads[room].total_bytes
            parts.append(f"the other agents leave at most {gib(left)} ({problem.devices[room].label})")
    cpu = next((d for d, dev in enumerate(problem.devices) if dev.is_cpu), None)
    if req.cpu is None:
        parts.append("no CPU fallback (cpu_model: none or not found)")
    elif cpu is not None and solution.choices[i].placement != "cpu":
        parts.append(
            f"its CPU model needs {gib(req.cpu.total_bytes)} of RAM, "
            f"{gib(problem.devices[cpu].usable_bytes - solution.loads[cpu].total_bytes)} available"
        )
    if not req.api and solution.choices[i].placement == "none":
        parts.append("no API endpoint declared (agents.yaml `api:`)")
    return "; ".join(parts)


def suggestions(
    problem: Problem, solution: Solution, i: int, fixes: Sequence[Fix], *, goal: Goal
) -> tuple[str, ...]:
    """The fixes that reach `goal` for agent i, each checked by solving the changed problem again."""
    out, done = [], set()
    for fix in (*fixes, *_memory_fixes(problem, i), *_split_fix(problem)):
        if fix.group and fix.group in done:
            continue
        requests = problem.requests
        if fix.request is not None:
            requests = (*requests[:i], fix.request, *requests[i + 1 :])
        changed = replace(
            _with_extra(problem, fix.extra),
            requests=requests,
            node_limit=CHECK_NODES,
            allow_split=problem.allow_split or fix.allow_split,
        )
        after = solve(changed)
        if _works(after, solution, i, goal, fix):
            got = after.choices[i]
            where = " + ".join(problem.devices[d].label.split(" (")[0] for d in got.devices)
            # a split says where it lands: the user sees which cards the model would span
            out.append(fix.text + (f": it then spans {where}" if got.placement == "split" else ""))
            done.add(fix.group)
    return tuple(out)


def _works(after: Solution, before: Solution, i: int, goal: Goal, fix: Fix) -> bool:
    got = after.choices[i]
    ok = got.placement != "none" if goal == "placed" else got.placement in ("gpu", "split")
    if goal == "first":
        # the first choice itself (re-estimated by the fix), or the quant of it the fix appended
        appended = fix.request is not None and fix.variant_of_first and got.cost is fix.request.candidates[-1]
        ok = ok and (got.rank == 0 or appended) and after.objective.fallbacks <= before.objective.fallbacks
    return ok and after.objective.unplaced <= before.objective.unplaced


def why_lesser(problem: Problem, solution: Solution, i: int) -> str:
    """Why agent i runs a lesser candidate than its first choice, in the solver's own terms: the first choice
    fits no GPU, or the plan that gives it to the agent is worse on a level of the objective (which one, and
    what the other agents would run instead)."""
    req, devs = problem.requests[i], problem.devices
    first = req.candidates[0]
    gpus = [d for d, dev in enumerate(devs) if not dev.is_cpu]
    big = max(gpus, key=lambda d: devs[d].usable_bytes)
    if not any(fits_alone(first, (d,), problem) for d in gpus) and not any(
        o.placement == "split" and o.rank == 0 for o in options(problem, i)
    ):
        return f"largest usable {gib(devs[big].usable_bytes)} on {devs[big].label}"
    forced = replace(req, candidates=(first,), cpu=None, api=False)
    alt = solve(replace(problem, requests=(*problem.requests[:i], forced, *problem.requests[i + 1 :]),
                        node_limit=CHECK_NODES))
    if alt.choices[i].placement == "none":
        return "it fits no GPU beside the models the other agents need"
    changes = [
        f"{problem.requests[j].agent} {_describe(b, problem.requests[j])}"
        for j, (a, b) in enumerate(zip(solution.choices, alt.choices, strict=True))
        if j != i and (a.rank, a.placement) != (b.rank, b.placement)
    ]
    with_it = f"with it, {', '.join(changes)}" if changes else "with it"
    now, then = solution.objective, alt.objective
    if then.unplaced > now.unplaced:
        return f"{with_it}: {then.unplaced - now.unplaced} more agent(s) could not be placed at all"
    if then.fallbacks > now.fallbacks:
        return f"{with_it}: {then.fallbacks - now.fallbacks} more agent(s) would leave the GPUs"
    if then.rank_sum > now.rank_sum:
        return (f"{with_it}: a larger step down weighted by priority ({then.rank_sum} against "
                f"{now.rank_sum}; agents.yaml `priority`, the developer's is 2 unless set)")
    if then.shared_pairs > now.shared_pairs:
        return f"{with_it}: as good by priority, but more agents would share a GPU and wait on each other"
    room = now.min_headroom_bytes - then.min_headroom_bytes
    return f"{with_it}: as good by priority (a tie), and this plan keeps {gib(room)} more free on its fullest GPU"


def _describe(o: Option, req: Request) -> str:
    if o.placement in ("cpu", "api", "none"):
        return {"cpu": "would go to the CPU", "api": "would go to its API endpoint",
                "none": "could not be placed"}[o.placement]
    label = o.cost.label or o.cost.model if o.cost is not None else "?"
    return f"would run {label} (its choice {o.rank + 1})"


def priority_fix(problem: Problem, solution: Solution, i: int) -> list[Fix]:
    """The priority that would give agent i its first choice, when only the weighing of ranks stands in the
    way: the smallest that outweighs what the others would give up (checked like every fix)."""
    req, rank = problem.requests[i], solution.choices[i].rank
    if not req.candidates or rank == 0 or solution.choices[i].placement not in ("gpu", "split"):
        return []
    forced = replace(req, candidates=req.candidates[:1], cpu=None, api=False)
    alt = solve(replace(problem, requests=(*problem.requests[:i], forced, *problem.requests[i + 1 :]),
                        node_limit=CHECK_NODES))
    if alt.choices[i].placement == "none" or alt.objective.key()[:2] != solution.objective.key()[:2]:
        return []
    need = req.priority + (alt.objective.rank_sum - solution.objective.rank_sum) // rank + 1
    return [Fix(f"`priority: {need}` for {req.agent} in agents.yaml (now {req.priority}): its first choice "
                "then outweighs what the other agents give up for it", replace(req, priority=need))]


def _memory_fixes(problem: Problem, i: int) -> list[Fix]:
    """For the largest GPU: how much more memory would place the agent (64 MiB steps, checked)."""
    req = problem.requests[i]
    gpus = [d for d, dev in enumerate(problem.devices) if not dev.is_cpu]
    if not req.candidates or not gpus:
        return []
    d = max(gpus, key=lambda g: problem.devices[g].usable_bytes)
    dev = problem.devices[d]
    hi = min(c.total_bytes for c in req.candidates) + max(c.total_bytes for c in req.candidates)
    if not _fits_with(problem, i, d, hi):
        return []
    lo = 0
    while hi - lo > 64 * MIB:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _fits_with(problem, i, d, mid) else (mid, hi)
    return [
        Fix(
            f"{dev.label} would need {gib(hi)} more usable memory "
            f"({gib(dev.usable_bytes)} → {gib(dev.usable_bytes + hi)}): a bigger card, or less reserve or "
            "fewer other processes on it",
            extra=MoreMemory(d, hi),
        )
    ]


def _with_extra(problem: Problem, extra: MoreMemory | None) -> Problem:
    if extra is None:
        return problem
    devs = list(problem.devices)
    d = extra.device
    devs[d] = replace(devs[d], usable_bytes=devs[d].usable_bytes + extra.extra_bytes)
    return replace(problem, devices=tuple(devs))


def _fits_with(problem: Problem, i: int, d: int, extra: int) -> bool:
    after = solve(replace(_with_extra(problem, MoreMemory(d, extra)), node_limit=CHECK_NODES))
    return after.choices[i].placement in ("gpu", "split")


def _split_fix(problem: Problem) -> list[Fix]:
    if problem.allow_split:
        return []
    return [Fix("allow a split across GPUs (`allow_split: true` in gpu_layout.yaml)", allow_split=True)]


def upgrades(problem: Problem, solution: Solution, i: int, fixes: Sequence[Fix]) -> tuple[str, ...]:
    """The first bigger model (fixes put it first in agent i's request) that the plan takes with every other
    agent's placement and rank unchanged: headroom used, nothing traded for it. Checked by re-solving."""
    if solution.choices[i].placement not in ("gpu", "split") or solution.choices[i].rank != 0:
        return ()
    for fix in fixes:
        assert fix.request is not None
        requests = (*problem.requests[:i], fix.request, *problem.requests[i + 1 :])
        after = solve(replace(problem, requests=requests, node_limit=CHECK_NODES))
        others_same = all(
            (a.placement, a.rank) == (b.placement, b.rank)
            for j, (a, b) in enumerate(zip(solution.choices, after.choices, strict=True)) if j != i
        )
        if after.choices[i].rank == 0 and after.choices[i].placement in ("gpu", "split") and others_same:
            return (fix.text,)
    return ()
