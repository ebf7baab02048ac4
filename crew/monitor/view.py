"""The monitor's table and JSON: live samples against the plan. Pure: samples in, a rich Table or dict out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from crew.monitor.alerts import Alert
from crew.monitor.live import GpuSample
from crew.units import gib


@dataclass(frozen=True)
class PlannedGpu:
    planned_bytes: int
    agents: tuple[str, ...]
    name: str = ""  # the card the plan was made for: a replay of another rig says so
    uuid: str | None = None


def _gib(b: int | None) -> str:
    return gib(b, unit=False, missing="?")  # the column header names the unit


def monitor_table(samples: Sequence[GpuSample], planned: Mapping[int, PlannedGpu], alerts: Sequence[Alert],
                  servers: Callable[[GpuSample], list[str]], title: str = "GPUs (live)") -> Table:
    """One row per GPU; a value whose threshold is crossed is red, and the alert text goes under the table."""
    hot = {(a.gpu_index, a.kind) for a in alerts}
    t = Table(title=title, caption="\n".join(a.message for a in alerts) or None,
              caption_style="bold red")
    for col in ("GPU", "Util", "VRAM used / total GiB", "Planned GiB", "Temp", "Power", "Servers / agents"):
        t.add_column(col, justify="right" if col in ("GPU", "Util", "Temp", "Power") else "left")
    for s in samples:
        def cell(kind: str, text: str, s: GpuSample = s) -> Text:
            return Text(text, style="bold red" if (s.index, kind) in hot else "")

        plan = planned.get(s.index)
        pct = f" ({s.used_pct:.0f} %)" if s.used_pct is not None else ""
        who = [Text(w) for w in servers(s)]
        if plan and plan.agents:
            who.append(Text(f"agents: {', '.join(plan.agents)}"))
        who += [Text(f"error: {e}", style="yellow") for e in s.errors]
        t.add_row(
            f"{s.index} {s.name}",
            cell("util", f"{s.util_pct} %" if s.util_pct is not None else "?"),
            cell("vram", f"{_gib(s.used_bytes)} / {_gib(s.total_bytes)}{pct}"),
            _gib(plan.planned_bytes) if plan else "—",
            cell("temp", f"{s.temp_c} °C" if s.temp_c is not None else "?"),
            f"{s.power_mw / 1000:.0f} W" if s.power_mw is not None else "?",
            Text("\n").join(who) if who else "—",
        )
    return t


def monitor_json(samples: Sequence[GpuSample], planned: Mapping[int, PlannedGpu], alerts: Sequence[Alert],
                 note: str, servers: Callable[[GpuSample], list[str]]) -> dict[str, Any]:
    """The `--once --json` form (schema localcrew.monitor/1); sizes in integer bytes, as everywhere."""
    gpus = []
    for s in samples:
        d = asdict(s)
        d["processes"] = [{"pid": pid, "used_bytes": used} for pid, used in s.processes]
        d["servers"] = servers(s)
        plan = planned.get(s.index)
        d["planned_bytes"] = plan.planned_bytes if plan else None
        d["agents"] = list(plan.agents) if plan else []
        gpus.append(d)
    return {"schema": "localcrew.monitor/1", "note": note, "gpus": gpus,
            "alerts": [asdict(a) for a in alerts]}
