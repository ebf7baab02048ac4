"""Charts for notebooks and reports: a plan's per-GPU VRAM, and the estimator against llama.cpp.

matplotlib is imported inside each function (it is a dev dependency, never imported by `plan-gpus` or
`crewai run`); the functions return a Figure and show nothing, so the caller decides to display or save it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crew.planner.plan import Plan
from crew.units import GIB, LOCAL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from crew.planner.measured import Comparison

# the same parts, in the same order and colours, as the `plan-gpus` GPU table (render.SEGMENTS), plus free
PARTS = (
    ("weights", "tab:blue"),
    ("KV cache", "tab:purple"),
    ("compute", "gold"),
    ("overhead", "grey"),
    ("reserve", "tab:red"),
    ("free", "whitesmoke"),
)


def gpu_parts(plan: Plan) -> list[tuple[str, list[float]]]:
    """Per usable GPU: its label and GiB of weights, KV, compute, overhead, reserve, free (summing to total)."""
    out = []
    for g in plan.gpus:
        label = f"GPU {g.index if g.host == LOCAL else f'{g.host}:{g.index}'}\n{_short(g.name)}"
        if g.excluded:
            out.append((label + "\n(excluded)", [0.0] * len(PARTS)))
            continue
        n = (*g.parts_bytes, max(0, g.headroom_bytes))
        out.append((label, [b / GIB for b in n]))
    return out


def vram_chart(plan: Plan, *, title: str | None = None) -> Figure:
    """Stacked bars, one per GPU: weights / KV / compute / overhead / reserve / free, in GiB, agents on top.

    An excluded GPU gets an empty hatched bar of its total memory. A plan with no GPU gets a figure that
    says so.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.9 * max(2, len(plan.gpus)) + 1.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title or f"VRAM per GPU ({plan.source}{', simulated' if plan.simulated else ''})")
    if not plan.gpus:
        ax.text(0.5, 0.5, "no GPU in this plan: every agent is on the CPU", ha="center", va="center")
        ax.set_axis_off()
        return fig
    rows = gpu_parts(plan)
    xs = range(len(rows))
    bottoms = [0.0] * len(rows)
    for k, (name, colour) in enumerate(PARTS):
        heights = [parts[k] for _, parts in rows]
        ax.bar(xs, heights, bottom=bottoms, color=colour, edgecolor="black", linewidth=0.4, label=name)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for x, g in zip(xs, plan.gpus, strict=True):
        total = g.total_bytes / GIB
        if g.excluded:
            ax.bar(x, total, color="none", edgecolor="grey", hatch="//", linewidth=0.6)
            ax.text(x, total / 2, "excluded", ha="center", va="center", rotation=90, color="dimgrey")
        else:
            ax.text(x, total + 0.2, "\n".join(g.agents) or "idle", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), [label for label, _ in rows], fontsize=8)
    ax.set_ylabel("GiB")
    top = max(g.total_bytes for g in plan.gpus) / GIB
    ax.set_ylim(0, top * 1.35)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


def estimate_chart(rows: Sequence[tuple[str, Sequence[Comparison]]], *, title: str | None = None) -> Figure:
    """Estimated against measured MiB, one panel per component (weights, KV cache, compute, total).

    `rows` pairs a label (e.g. "ctx 2048 f16") with `crew.planner.measured.compare(...)` for that setting.
    Points on the diagonal are exact; each panel's title gives its largest relative error.
    """
    from matplotlib.figure import Figure

    mib = 1024**2
    components = [c.component for c in rows[0][1]] if rows else []
    fig = Figure(figsize=(3.2 * max(1, len(components)), 3.6), layout="constrained")
    if title:
        fig.suptitle(title)
    for k, comp in enumerate(components):
        ax = fig.add_subplot(1, len(components), k + 1)
        pts = [(label, next(c for c in cmp if c.component == comp)) for label, cmp in rows]
        meas = [c.measured_bytes / mib for _, c in pts]
        est = [c.estimate_bytes / mib for _, c in pts]
        lo, hi = min(meas + est), max(meas + est)
        pad = max((hi - lo) * 0.08, hi * 0.02, 1.0)
        span = hi - lo + 2 * pad
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linewidth=0.8, linestyle="--")
        labelled: list[tuple[float, float]] = []
        for (label, c), m, e in zip(pts, meas, est, strict=True):
            ax.scatter(m, e, s=22, color="tab:green" if c.within_target else "tab:red", zorder=3)
            if all(abs(m - x) + abs(e - y) > 0.06 * span for x, y in labelled):  # no label on a label
                ax.annotate(label, (m, e), fontsize=6, xytext=(3, -8), textcoords="offset points")
                labelled.append((m, e))
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.ticklabel_format(useOffset=False)
        worst = max((abs(c.error_ratio) for _, c in pts), default=0.0)
        ax.set_title(f"{comp} (worst {worst:.1%})", fontsize=9)
        ax.set_xlabel("measured by llama.cpp, MiB", fontsize=8)
        ax.set_ylabel("estimated, MiB", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def _short(name: str) -> str:
    return name.replace("NVIDIA ", "").replace("GeForce ", "")
