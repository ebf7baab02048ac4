"""Monitoring overhead: the crew-run sampler and the monitor's refresh.

    uv run python benchmarks/bench_monitor.py [--seconds 2] [--repeats 7]

1. Sampler overhead on a crew run: a fixed CPU-bound workload (pure Python, one thread, as the crew's own
   Python is) timed alone and under `GpuSampler` at 1 s and 0.1 s; the wall time added, and the CPU time of
   one sample x samples per second = the sampler's CPU %. The provider is the 4-GPU fake (no driver here),
   so this measures our side (sampling, alert checks, locking); real NVML queries add their own cost.
2. One sample of the real provider here: the no-driver path (open fails once, nothing is sampled after).
3. The monitor's refresh: read 4 GPUs, check alerts, build the rich table and render it; median of 200.
4. `plan-gpus monitor --once --json` as a user runs it (fresh process), median wall of 5; checks that it
   imports neither crewai, litellm nor llama_cpp.
5. `--replay` of a long log: a generated nvidia-smi CSV of 24 h at 5 s on 4 GPUs (69,120 rows), parsed and
   replayed (alerts + peaks), against the same rows' file size; median of 3. The rows are generated here
   for size only, not presented as readings.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from crew.monitor.alerts import Thresholds, check  # noqa: E402
from crew.monitor.live import PynvmlLive, open_live, read_gpus  # noqa: E402
from crew.monitor.sampler import GpuSampler  # noqa: E402
from crew.monitor.view import PlannedGpu, monitor_table  # noqa: E402
from tests.layouts import GIB, rtx3060  # noqa: E402
from tests.monitor_fakes import FakeLiveNvml, Live  # noqa: E402


def four_gpus() -> FakeLiveNvml:
    return FakeLiveNvml(gpus=[rtx3060(i) for i in range(4)],
                        live=[Live(util=60, procs=((1000 + i, 8 * GIB),)) for i in range(4)])


def workload(n: int) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i % 7
    return time.perf_counter() - t


def bench_sampler(seconds: float, repeats: int) -> None:
    n = 1_000_000
    per = workload(n)
    n = int(n * seconds / per)  # about `seconds` of work
    nvml = four_gpus()
    open_live(nvml)
    s = GpuSampler(provider=nvml)
    k, t = 2000, time.process_time()
    for _ in range(k):
        s.sample_once()
    cpu_per_sample = (time.process_time() - t) / k
    print(f"sampler: one sample of 4 GPUs costs {cpu_per_sample * 1e6:.0f} µs CPU")
    # interleaved so that load from other processes on a shared machine hits every variant alike
    runs: dict[float | None, list[float]] = {None: [], 1.0: [], 0.1: []}
    for _ in range(repeats):
        runs[None].append(workload(n))
        for interval in (1.0, 0.1):
            with GpuSampler(provider=four_gpus(), interval_s=interval):
                runs[interval].append(workload(n))
    base = statistics.median(runs[None])
    spread = (max(runs[None]) - min(runs[None])) / base
    print(f"  workload alone: median {base:.3f} s over {repeats} (spread {100 * spread:.1f} %)")
    for interval in (1.0, 0.1):
        med = statistics.median(runs[interval])
        print(f"  interval {interval:>4} s: median {med:.3f} s ({med - base:+.3f} s, "
              f"{100 * (med - base) / base:+.2f} %); sampler CPU {100 * cpu_per_sample / interval:.3f} %")


def bench_no_driver() -> None:
    t = time.perf_counter()
    with GpuSampler(provider=PynvmlLive(), interval_s=1.0) as s:
        pass
    print(f"real provider here: enter+exit {1e3 * (time.perf_counter() - t):.2f} ms; note: {s.note or '(GPUs)'}")


def bench_refresh() -> None:
    nvml = four_gpus()
    open_live(nvml)
    planned = {i: PlannedGpu(9 * GIB, ("coder", "tester")) for i in range(4)}
    times = []
    for _ in range(200):
        t = time.perf_counter()
        samples = read_gpus(nvml).gpus
        alerts = [a for g in samples for a in check(g, Thresholds(), generating=True)]
        table = monitor_table(samples, planned, alerts, lambda g: [f"llama.cpp :8080 (pid {g.index})"])
        Console(file=io.StringIO(), width=160).print(table)
        times.append(time.perf_counter() - t)
    print(f"monitor refresh (4 GPUs, read + alerts + table + render): median {1e3 * statistics.median(times):.2f} "
          f"ms, p95 {1e3 * sorted(times)[189]:.2f} ms")


def bench_cli() -> None:
    code = ("import sys, runpy; sys.argv=['plan-gpus','monitor','--once','--json'];"
            "from crew.cli import main; rc=main();"
            "heavy=[m for m in ('crewai','litellm','llama_cpp') if m in sys.modules];"
            "print('HEAVY', heavy, file=sys.stderr)")
    walls, heavy = [], ""
    for _ in range(5):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - t)
        heavy = [ln for ln in p.stderr.splitlines() if ln.startswith("HEAVY")][-1]
    print(f"`plan-gpus monitor --once --json` (fresh process): median {statistics.median(walls):.3f} s; {heavy}")


def bench_replay() -> None:
    from crew.monitor.recorded import QUERY, parse_recording
    from crew.monitor.replay import replay

    rounds, header = 24 * 3600 // 5, ", ".join(QUERY.split(","))
    rows = [f"2026/01/01 00:00:00, {g}, NVIDIA GeForce RTX 3060, GPU-{g}, 12288 MiB, {5000 + (r * 37 + g) % 6000} "
            f"MiB, {(r + g) % 100} %, {50 + r % 30}, {100 + r % 70}.00 W" for r in range(rounds) for g in range(4)]
    text = header + "\n" + "\n".join(rows) + "\n"
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = replay(parse_recording(text, "bench.csv"), Thresholds(), generating=True)
        times.append(time.perf_counter() - t)
    print(f"replay of 24 h at 5 s on 4 GPUs ({len(rows):,} rows, {len(text) / 2**20:.1f} MiB): median "
          f"{statistics.median(times):.2f} s; {len(out.recording.readings):,} readings, {len(out.first_alerts)} "
          "distinct alerts")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0, help="length of the workload")
    ap.add_argument("--repeats", type=int, default=7)
    ns = ap.parse_args()
    bench_sampler(ns.seconds, ns.repeats)
    bench_no_driver()
    bench_refresh()
    bench_cli()
    bench_replay()


if __name__ == "__main__":
    main()
