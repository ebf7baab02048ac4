"""Why an agent could not be placed (or only on a fallback), in numbers, and ways out that really work.

Every way out is checked by solving the changed problem again: a smaller quant, a shorter context, a q8_0
KV cache, sharing another agent's model (all built by build.py, which can re-estimate), more memory on
one GPU and allowing a split (built here). Only those that place the agent without unplacing another
are offered. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from crew.planner.solver import Problem, Request, Solution, solve

GIB = 1024**3
MIB = 1024**2
CHECK_NODES = 2_000  # each check is a full solve; a smaller budget keeps a dozen of them quick


@dataclass(frozen=True)
class Fix:
    text: str  # the change, in the user's terms, with its numbers
    request: Request | None = None  # replaces the agent's request
    allow_split: bool = False
    group: str = ""  # of fixes sharing a group, only the first that works is offered
    extra: tuple[int, int] | None = None  # (device, bytes) more usable memory on one device


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


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
    problem: Problem, solution: Solution, i: int, fixes: Sequence[Fix], *, want_gpu: bool
) -> tuple[str, ...]:
    """The fixes that work, each re-solved; `want_gpu`: the goal is a GPU placement, not just any."""
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
        if _works(changed, solution, i, want_gpu):
            out.append(fix.text)
            done.add(fix.group)
    return tuple(out)


def _works(p: Problem, before: Solution, i: int, want_gpu: bool) -> bool:
    after = solve(p)
    placement = after.choices[i].placement
    ok = placement in ("gpu", "split") if want_gpu else placement != "none"
    return ok and after.objective.unplaced <= before.objective.unplaced


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
            extra=(d, hi),
        )
    ]


def _with_extra(problem: Problem, extra: tuple[int, int] | None) -> Problem:
    if extra is None:
        return problem
    d, n = extra
    devs = list(problem.devices)
    devs[d] = replace(devs[d], usable_bytes=devs[d].usable_bytes + n)
    return replace(problem, devices=tuple(devs))


def _fits_with(problem: Problem, i: int, d: int, extra: int) -> bool:
    after = solve(replace(_with_extra(problem, (d, extra)), node_limit=CHECK_NODES))
    return after.choices[i].placement in ("gpu", "split")


def _split_fix(problem: Problem) -> list[Fix]:
    if problem.allow_split:
        return []
    return [Fix("allow a split across GPUs (`allow_split: true` in gpu_layout.yaml)", allow_split=True)]
