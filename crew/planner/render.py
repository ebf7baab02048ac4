"""The dry run, for people: tables built from a plan and returned; printing is the caller's business."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from crew.planner.plan import Plan
from crew.units import LOCAL, gib

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text


class LaunchSpec(Protocol):
    """What the dry run shows of a server (crew.serving.spec.LaunchSpec has it; the planner, a layer below
    serving, names only what it reads)."""

    server_id: str
    machine: str
    agents: tuple[str, ...]
    simulated: bool
    planned_pinning: str
    unresolved_models: tuple[str, ...]
    engine: str

    @property
    def config_json(self) -> str | None: ...

    @property
    def slots(self) -> int: ...

    @property
    def base_url(self) -> str: ...

    def shell_command(self) -> str: ...

BAR = 14
# weights, KV cache, compute buffers, runtime overhead, reserve; free space is a dim dot
SEGMENTS = (("█", "blue"), ("█", "magenta"), ("█", "yellow"), ("█", "grey50"), ("▒", "red"))


def num(n: int) -> str:
    """GiB in a column whose header names the unit."""
    return gib(n, unit=False)


def bar(parts: Sequence[int], total: int) -> Text:
    """One bar over the card's total memory, a segment per part, rounded so the widths add up."""
    from rich.text import Text

    text = Text()
    if total <= 0:
        return text.append("·" * BAR, style="dim")
    used, edge = 0, 0
    for n, (char, style) in zip(parts, SEGMENTS, strict=False):
        used += n
        end = min(BAR, round(used / total * BAR))
        text.append(char * max(0, end - edge), style=style)
        edge = max(edge, end)
    return text.append("·" * (BAR - edge), style="dim")


def short_name(name: str) -> str:
    return name.replace("NVIDIA ", "").replace("GeForce ", "")


def gpu_table(plan: Plan) -> Table:
    from rich import box
    from rich.table import Table

    t = Table(
        title=f"GPUs ({plan.source}{', simulated' if plan.simulated else ''}), GiB — "
        "[blue]weights[/] [magenta]KV[/] [yellow]compute[/] [grey50]overhead[/] [red]reserve[/]; "
        "tok/s: bandwidth roofline, not measured",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col, right in (
        ("GPU", False),
        ("card", False),
        ("total/rsv", True),
        ("use", False),
        ("plan", True),
        ("free", True),
        ("agents tok/s", False),
    ):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    speeds = {a.name: a.tokens_per_s for a in plan.agents}
    for g in plan.gpus:
        where = str(g.index) if g.host == LOCAL else f"{g.host}:{g.index}"
        if g.excluded:
            t.add_row(where, short_name(g.name), num(g.total_bytes), "[dim]excluded (below)[/]", "", "", "")
            continue
        parts = g.parts_bytes
        who = "\n".join(f"{a} {speeds[a]:.0f}" if speeds.get(a) else a for a in g.agents) or "[dim]idle[/]"
        t.add_row(
            where,
            short_name(g.name),
            f"{num(g.total_bytes)}/{num(g.reserve_bytes)}",
            bar(parts, g.total_bytes),
            num(g.planned_bytes),
            num(g.headroom_bytes),
            who,
        )
    return t


def agents_table(plan: Plan) -> Table:
    from rich import box
    from rich.table import Table

    # Readable at 80 columns: the breakdown goes under the model's name instead of a column of its own,
    # which rich folded into a strip two characters wide.
    t = Table(
        title="Agents, GiB of its model alone (* catalog estimate), under it weights+KV+compute+overhead; "
        "tok/s: bandwidth roofline (an upper bound), not measured",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col, right in (("agent", False), ("model / W+KV+C+O", False), ("rank", True), ("on", False),
                       ("ctx", True), ("total", True), ("tok/s", True)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    for a in plan.agents:
        e = a.estimate
        where = {"gpu": f"GPU {a.gpu_indices[0] if a.gpu_indices else '?'}", "cpu": "CPU", "api": "API"}.get(
            a.placement, "GPUs " + "+".join(map(str, a.gpu_indices))
        )
        if a.host != LOCAL and a.gpu_indices:
            where = f"{a.host} {where}"
        parts = (e.weights_bytes, e.kv_cache_bytes + e.output_bytes, e.compute_bytes, e.overhead_bytes)
        model = a.model.removeprefix("ollama/") + ("*" if a.catalog_estimate else "")
        terms = "+".join(num(n) for n in parts)
        t.add_row(
            a.name,
            f"{model}\n[dim]{terms}[/]" if a.placement != "api" else model,
            str(a.candidate_rank),
            where,
            str(a.num_ctx),
            num(e.total_bytes),
            f"{a.tokens_per_s:.0f}" if a.tokens_per_s else "—",
        )
    for u in plan.unplaced:
        t.add_row(f"[red]{u.agent}[/]", "—", "", "[red]none[/]", "", "", "")
    return t


def explain_unplaced(plan: Plan) -> str:
    """Plain text: each unplaced agent, why, and what would work (used by `crewai run` too)."""
    lines = []
    for u in plan.unplaced:
        lines.append(f"{u.agent}: {u.reason}")
        lines += [f"  - {s}" for s in u.suggestions] or ["  - no change to this agent alone is enough"]
    return "\n".join(lines)


def launch_lines(specs: Sequence[LaunchSpec]) -> list[str]:
    out = []
    for s in specs:
        head = (f"# {s.server_id} on {s.machine}: {','.join(s.agents)} → {s.base_url} "
                f"({s.engine}, {s.slots} slot{'s' if s.slots != 1 else ''})")
        if s.simulated:
            head += (
                f" (simulated; planned CUDA_VISIBLE_DEVICES={s.planned_pinning})"
            )
        if s.unresolved_models:
            head += f" — to pull first: {','.join(s.unresolved_models)}"
        out += [head, s.shell_command()]
        if s.config_json:
            out.append(f"# {s.server_id}.json:\n{s.config_json}")
    return out


def plan_view(plan: Plan, specs: Sequence[LaunchSpec]) -> list[RenderableType]:
    """Everything the dry run shows, in order."""
    from rich.text import Text

    out: list[RenderableType] = []
    # what the hardware said comes first: "no GPU usable, and why" explains everything below it
    for n in plan.notes:
        out.append(Text.from_markup("[yellow]note:[/] ") + Text(n))
    if plan.gpus:
        out.append(gpu_table(plan))
        out.append(Text(f"KV cache on GPUs: {plan.kv_type} (gpu_layout.yaml `kv_type`, q8_0 unless set); "
                        "f16 for CPU models", style="dim"))
    for g in plan.gpus:
        if g.excluded:
            out.append(
                Text(f"GPU {g.index}{'' if g.host == LOCAL else ' on ' + g.host} ({short_name(g.name)}) excluded: "
                     f"{g.exclusion_reason}", style="dim")
            )
    if plan.cpu is not None and plan.cpu.agents:
        c = plan.cpu
        out.append(
            Text(
                f"CPU: {gib(c.planned_bytes)} planned of {gib(c.usable_bytes)} usable RAM "
                f"({gib(c.total_bytes)} total) — {', '.join(c.agents)} ({', '.join(c.models)})"
            )
        )
    out.append(agents_table(plan))
    for x in plan.left_out:
        out.append(Text.from_markup("[yellow]left out of the plan:[/] ")
                   + Text(f"{x.agent}'s model {x.model}: {x.reason}" + (f" — fix: {x.fix}" if x.fix else "")))
    for w in plan.warnings:
        out.append(Text.from_markup("[yellow]warning:[/] ") + Text(w))
    for u in plan.upgrades:
        out.append(Text.from_markup("[green]upgrade:[/] ") + Text(u))
    if plan.unplaced:
        out.append(Text("Not placed:", style="bold red"))
        out.append(Text(explain_unplaced(plan)))
    if specs:
        out.append(Text("Launch commands:", style="bold"))
        out += [Text(line) for line in launch_lines(specs)]
    verdict = "every agent is placed" if plan.feasible else f"{len(plan.unplaced)} agent(s) cannot be placed"
    out.append(Text(f"Plan: {verdict}.", style="bold green" if plan.feasible else "bold red"))
    return out
