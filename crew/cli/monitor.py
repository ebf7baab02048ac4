"""`plan-gpus monitor [--interval S] [--once] [--json] [--prometheus PORT] [--plan FILE] [--layout FILE]
[--record FILE]`, and `plan-gpus monitor --replay FILE` for a recording (ours, or nvidia-smi's CSV).

A live view of each GPU against the plan, alerts at the layout's thresholds, and an optional Prometheus
endpoint on loopback. Without an NVIDIA driver it says so in one line (exit 1), or, with --json or
--prometheus, reports `nvml_up 0` / an empty list with the reason: a scraper should see "down", not fail.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from crew.errors import ConfigError, HardwareError, UsageError
from crew.units import LOCAL

if TYPE_CHECKING:
    from crew.monitor.alerts import Alert, Thresholds
    from crew.monitor.live import GpuSample, LiveNvml
    from crew.monitor.prometheus import PlannedAgent
    from crew.monitor.view import PlannedGpu
    from crew.planner.plan import Plan


def register(name: str, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.description = ("Watch each GPU live: utilisation, VRAM used/total against the plan, temperature, "
                          "power and the model servers on it. Alerts use gpu_layout.yaml `alerts:`.")
    parser.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between refreshes")
    parser.add_argument("--once", action="store_true", help="sample once and exit")
    parser.add_argument("--json", action="store_true", help="print JSON (schema localcrew.monitor/1)")
    parser.add_argument("--prometheus", type=int, metavar="PORT",
                        help="serve /metrics on 127.0.0.1:PORT (Prometheus text format)")
    parser.add_argument("--plan", metavar="FILE", help="a plan saved by `plan-gpus --save` to compare against")
    parser.add_argument("--layout", metavar="FILE", help="gpu_layout.yaml for thresholds (default: ./)")
    parser.add_argument("--log", metavar="FILE", help="append alerts to this run log (run.jsonl)")
    parser.add_argument("--busy", action="store_true",
                        help="agents are generating now: enables the low-utilisation alert on GPUs we serve on")
    parser.add_argument("--replay", metavar="FILE",
                        help="instead of reading NVML, replay a log recorded with `nvidia-smi --query-gpu=... "
                             "--format=csv` (see docs/monitoring.md): the same table, alerts and peaks")
    parser.add_argument("--record", metavar="FILE",
                        help="append every reading to FILE in nvidia-smi's CSV, for a later --replay")
    return lambda ns: run_monitor(ns)


def run_monitor(ns: argparse.Namespace, provider: LiveNvml | None = None) -> int:
    from crew.monitor.live import PynvmlLive, open_live

    if ns.interval <= 0:
        raise UsageError("--interval must be positive", where="--interval", fix="e.g. --interval 2")
    thresholds = _thresholds(ns.layout)
    plan = _load_plan(ns.plan) if ns.plan else None
    if ns.replay:
        if ns.record:
            raise UsageError("--record and --replay cannot be combined", where="--record",
                             fix="record live readings, or replay a recording")
        return _replay(ns, thresholds, plan)
    if ns.record and ns.prometheus is not None:
        raise UsageError("--record works with the live view and --once, not --prometheus", where="--record",
                         fix="run a second `plan-gpus monitor --record FILE` next to the exporter")
    nvml: LiveNvml = provider if provider is not None else PynvmlLive()
    note = open_live(nvml)
    if ns.prometheus is not None:
        return _serve(ns, nvml, note, plan)
    if note and not ns.json:
        raise HardwareError(note, where="plan-gpus monitor",
                            fix="run it where an NVIDIA driver and GPU are, add --json for an empty reading, "
                                "or --replay a recording")
    if ns.once or ns.json:
        samples, alerts = _sample(nvml, note, thresholds, ns.busy)
        _record(ns.record, samples)
        _log_alerts(ns.log, alerts, set())
        if ns.json:
            from crew.monitor.view import monitor_json

            print(json.dumps(monitor_json(samples, _planned_gpus(plan), alerts, note, _servers), indent=2))
        else:
            from rich.console import Console

            from crew.monitor.view import monitor_table

            Console().print(monitor_table(samples, _planned_gpus(plan), alerts, _servers))
        return 0
    return _live(ns, nvml, thresholds, plan)


def _replay(ns: argparse.Namespace, thresholds: Thresholds, plan: Plan | None) -> int:
    from crew.monitor.recorded import RECORD_HINT, parse_recording
    from crew.monitor.replay import replay, replay_json, replay_view

    if ns.prometheus is not None:
        raise UsageError("--replay and --prometheus cannot be combined", where="--replay",
                         fix="a scraper wants live readings: drop --replay")
    try:
        text = Path(ns.replay).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise ConfigError(f"cannot read the recording: {why}", where=ns.replay, fix=RECORD_HINT) from None
    replayed = replay(parse_recording(text, ns.replay), thresholds, generating=ns.busy)
    planned = _planned_gpus(plan)
    active = set[tuple[int, str]]()
    for alerts in replayed.alerts_by_reading:  # logged as they started, as the live view logs them
        active = _log_alerts(ns.log, list(alerts), active)
    if ns.json:
        print(json.dumps(replay_json(replayed, planned), indent=2))
    else:
        from rich.console import Console

        Console().print(replay_view(replayed, planned))
    return 0


def _sample(nvml: LiveNvml, note: str, t: Thresholds, busy: bool) -> tuple[list[GpuSample], list[Alert]]:
    from crew.monitor.alerts import check
    from crew.monitor.live import read_gpus
    from crew.monitor.procs import read_cmdline, server_label

    if note:
        return [], []
    samples = list(read_gpus(nvml).gpus)
    alerts = []
    for s in samples:
        ours = busy and any(server_label(read_cmdline(pid)) for pid, _ in s.processes)
        alerts += check(s, t, generating=ours)
    return samples, alerts


def _record(file: str | None, samples: list[GpuSample]) -> None:
    if not file:
        return
    from crew.monitor.live import Reading
    from crew.monitor.recorded import append_recording

    try:
        append_recording(Path(file), Reading(tuple(samples)))
    except OSError as exc:
        raise ConfigError(f"cannot write the recording: {exc.strerror}", where=file,
                          fix="choose a writable file for --record") from None


def _servers(s: GpuSample) -> list[str]:
    from crew.monitor.procs import describe

    return describe(s.processes)


def _live(ns: argparse.Namespace, nvml: LiveNvml, t: Thresholds, plan: Plan | None) -> int:
    from rich.live import Live

    from crew.monitor.view import monitor_table

    planned, active = _planned_gpus(plan), set[tuple[int, str]]()
    try:
        with Live(auto_refresh=False) as live:
            while True:
                samples, alerts = _sample(nvml, "", t, ns.busy)
                _record(ns.record, samples)
                active = _log_alerts(ns.log, alerts, active)
                live.update(monitor_table(samples, planned, alerts, _servers), refresh=True)
                time.sleep(ns.interval)
    except KeyboardInterrupt:  # the normal way to leave a live view
        return 0


def _log_alerts(log: str | None, alerts: list[Alert], active: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Append alerts that were not already firing on the previous refresh; returns the firing set."""
    now = {(a.gpu_index, a.kind) for a in alerts}
    if log:
        from crew.journal.log import RunLog
        from crew.journal.records import GpuAlert

        for a in alerts:
            if (a.gpu_index, a.kind) not in active:
                RunLog(Path(log)).record(GpuAlert.of(a))
    return now


def _serve(ns: argparse.Namespace, nvml: LiveNvml, note: str, plan: Plan | None) -> int:
    from crew.monitor.live import read_gpus
    from crew.monitor.prometheus import MetricsServer, render_metrics

    host, agents = socket.gethostname(), _planned_agents(plan)

    def collect() -> str:
        reading = read_gpus(nvml) if not note else None
        up = reading is not None and not reading.note
        return render_metrics(reading.gpus if reading else (), agents, host=host, nvml_up=up)

    try:
        server = MetricsServer(ns.prometheus, collect)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{ns.prometheus}: {exc.strerror}", where="--prometheus",
                         fix="choose a free port") from None
    with server:
        print(f"serving Prometheus metrics on http://127.0.0.1:{server.port}/metrics"
              + (f" ({note})" if note else ""), file=sys.stderr)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _thresholds(layout: str | None) -> Thresholds:
    from crew.monitor.alerts import thresholds_from

    path = Path(layout) if layout else Path.cwd() / "gpu_layout.yaml"
    if not layout and not path.is_file():
        return thresholds_from(None)
    from crew.config import load_layout

    return thresholds_from(getattr(load_layout(path), "alerts", None))


def _load_plan(file: str) -> Plan:
    from crew.planner.saved import read_saved_plan

    return read_saved_plan(Path(file))


def _planned_gpus(plan: Plan | None) -> dict[int, PlannedGpu]:
    from crew.monitor.view import PlannedGpu

    if plan is None:
        return {}
    return {g.index: PlannedGpu(g.planned_bytes, g.agents, g.name, g.uuid) for g in plan.gpus if g.host == LOCAL}


def _planned_agents(plan: Plan | None) -> list[PlannedAgent]:
    from crew.monitor.prometheus import PlannedAgent

    if plan is None:
        return []
    return [PlannedAgent(a.name, a.model, a.host, ",".join(map(str, a.gpu_indices)) or a.placement,
                         a.estimate.total_bytes) for a in plan.agents]
