"""Replay a recording (crew.monitor.recorded) through the monitor: the same alerts, peaks and views.

Pure: a Recording, thresholds and the plan's per-GPU figures in; a frozen result, a rich renderable and a
JSON dict out. The accounting is GpuSampler's, so a replayed log and a live crew run report peaks the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from crew.monitor.alerts import Alert, Thresholds
from crew.monitor.recorded import RecordedReading, Recording
from crew.monitor.sampler import GpuPeak, GpuSampler
from crew.monitor.view import PlannedGpu, monitor_json, monitor_table
from crew.units import gib


@dataclass(frozen=True)
class Replayed:
    recording: Recording
    alerts_by_reading: tuple[tuple[Alert, ...], ...]  # parallel to recording.readings
    peaks: tuple[GpuPeak, ...]
    first_alerts: tuple[str, ...]  # the first message per GPU and kind, in order of appearance
    busiest: int  # index of the reading with the most VRAM used in total: the moment worth showing


def replay(rec: Recording, t: Thresholds, *, generating: bool) -> Replayed:
    """`generating`: the recording was taken while agents generated (enables the low-utilisation alert)."""
    sampler = GpuSampler(thresholds=t)  # its NVML provider is never opened: only `record` is used
    per_reading = [tuple(sampler.record(r.reading, generating=generating)) for r in rec.readings]
    busiest = max(range(len(rec.readings)), key=lambda i: _used(rec.readings[i]))
    return Replayed(rec, tuple(per_reading), tuple(sampler.summary()), tuple(sampler.alerts()), busiest)


def _used(r: RecordedReading) -> int:
    return sum(s.used_bytes or 0 for s in r.reading.gpus)


def _no_servers(_: object) -> list[str]:
    return []  # nvidia-smi's GPU query carries no process list


def plan_mismatches(rec: Recording, planned: Mapping[int, PlannedGpu]) -> tuple[str, ...]:
    """Where the recorded GPUs are not the ones the plan was made for, in words (empty: they match).

    Compared: which indices exist, the card's name, and its UUID when both sides know it. Memory totals are
    not compared (a declared 12 GiB and nvidia-smi's 12288 MiB are the same card).
    """
    if not planned:
        return ()
    recorded = {s.index: s for r in rec.readings for s in r.reading.gpus}
    out = []
    for index, plan in sorted(planned.items()):
        seen = recorded.get(index)
        if seen is None:
            out.append(f"the plan has GPU {index}" + (f" ({plan.name})" if plan.name else "")
                       + ", the recording has no such GPU")
        elif plan.name and seen.name and plan.name != seen.name:
            out.append(f"GPU {index}: the plan is for {plan.name}, the recording is of {seen.name}")
        elif plan.uuid and seen.uuid and plan.uuid != seen.uuid:
            out.append(f"GPU {index}: the same model of card but another one (UUID {seen.uuid}, "
                       f"planned {plan.uuid})")
    out += [f"GPU {i} ({recorded[i].name}) was recorded but is not in the plan"
            for i in sorted(set(recorded) - set(planned))]
    return tuple(out)


def replay_view(r: Replayed, planned: Mapping[int, PlannedGpu]) -> RenderableType:
    """Provenance, the busiest reading as the live table shows it, then peaks over the whole recording."""
    rec, parts = r.recording, list[RenderableType]()
    first, last = rec.readings[0].timestamp, rec.readings[-1].timestamp
    span = f", {first} → {last}" if first and len(rec.readings) > 1 else (f", {first}" if first else "")
    parts.append(Text(f"Replaying {rec.source}: {len(rec.readings)} reading(s){span}", style="bold"))
    parts += [Text(c, style="dim") for c in rec.comments]
    mismatches = plan_mismatches(rec, planned)
    if mismatches:
        parts.append(Text("The recording is not of the GPUs this plan was made for — planned and peak figures "
                          "compare different cards:\n" + "\n".join(f"- {m}" for m in mismatches),
                          style="bold yellow"))
    shown = rec.readings[r.busiest]
    when = f" at {shown.timestamp}" if shown.timestamp else ""
    label = "the reading with the most VRAM used" if len(rec.readings) > 1 else "the only reading"
    parts.append(monitor_table(shown.reading.gpus, planned, r.alerts_by_reading[r.busiest], _no_servers,
                               title=f"GPUs (recorded{when}: {label})"))
    parts.append(peaks_table(r.peaks, planned))
    if r.first_alerts:
        parts.append(Text("Alerts during the recording:\n" + "\n".join(f"- {a}" for a in r.first_alerts),
                          style="bold red"))
    else:
        parts.append(Text("No alert threshold was crossed during the recording.", style="green"))
    return Group(*parts)


def peaks_table(peaks: tuple[GpuPeak, ...], planned: Mapping[int, PlannedGpu]) -> Table:
    t = Table(title="Over the recording: peak VRAM against the plan")
    for col in ("GPU", "Planned GiB", "Peak used GiB", "Difference", "Mean util", "Readings"):
        t.add_column(col, justify="left" if col == "GPU" else "right")
    for p in peaks:
        plan = planned.get(p.index)
        diff = (gib(p.peak_used_bytes - plan.planned_bytes, 2, unit=False, signed=True)
                if plan and p.peak_used_bytes is not None else "—")
        t.add_row(f"{p.index} {p.name}", gib(plan.planned_bytes, 2, unit=False) if plan else "—",
                  gib(p.peak_used_bytes, 2, unit=False, missing="?"), diff,
                  f"{p.mean_util_pct:.0f} %" if p.mean_util_pct is not None else "?", str(p.samples))
    return t


def replay_json(r: Replayed, planned: Mapping[int, PlannedGpu]) -> dict[str, Any]:
    """Schema localcrew.monitor-replay/1: each reading in the monitor's own JSON form, then the peaks."""
    readings = []
    for rr, alerts in zip(r.recording.readings, r.alerts_by_reading, strict=True):
        one = monitor_json(rr.reading.gpus, planned, alerts, "", _no_servers)
        readings.append({"timestamp": rr.timestamp, "gpus": one["gpus"], "alerts": one["alerts"]})
    peaks = [{**asdict(p), "planned_bytes": planned[p.index].planned_bytes if p.index in planned else None}
             for p in r.peaks]
    return {"schema": "localcrew.monitor-replay/1", "source": r.recording.source,
            "comments": list(r.recording.comments), "readings": readings, "peaks": peaks,
            "plan_mismatches": list(plan_mismatches(r.recording, planned)),
            "alerts": list(r.first_alerts)}
