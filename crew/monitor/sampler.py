"""The background sampler of a crew run: each GPU's peak memory and mean utilisation, and crossed thresholds.

A daemon thread reads NVML every `interval_s` seconds between `__enter__` and `__exit__`. With no driver it
records nothing and says so once in `note`. The lead's workflow marks generation with `generating()` so that
the low-utilisation alert only fires while an agent is waiting on its model.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from crew.errors import LocalcrewError
from crew.monitor.alerts import Alert, Thresholds, check
from crew.monitor.live import GpuSample, LiveNvml, PynvmlLive, Reading, open_live, read_gpus
from crew.monitor.recorded import append_recording
from crew.units import gib


@dataclass(frozen=True)
class GpuPeak:
    index: int
    uuid: str | None
    name: str
    peak_used_bytes: int | None  # None: memory could not be read on any sample
    mean_util_pct: float | None
    samples: int


@dataclass
class _Acc:
    name: str
    uuid: str | None
    peak: int | None = None
    util_sum: float = 0.0
    util_n: int = 0
    samples: int = 0


class GpuSampler:
    def __init__(self, provider: LiveNvml | None = None, interval_s: float = 1.0,
                 thresholds: Thresholds | None = None, record_to: Path | None = None) -> None:
        self._provider: LiveNvml = provider if provider is not None else PynvmlLive()
        self.record_to = record_to  # every reading appended here (nvidia-smi's CSV), for `monitor --replay`
        self.recording_note = ""
        self.interval_s = interval_s
        self.thresholds = thresholds or Thresholds()
        self.note = ""
        self._acc: dict[int, _Acc] = {}
        self._alerts: dict[tuple[int, str], Alert] = {}  # the first alert per GPU and kind: no flood
        self._busy = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        try:
            self.note = open_live(self._provider)
        except LocalcrewError as exc:  # a driver needing a reboot must not stop the crew: say it, go on
            self.note = f"GPU sampling off: {exc.one_line()}"
        if not self.note and self._safe_sample():  # a run shorter than one interval still gets a figure
            self._thread = threading.Thread(target=self._loop, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if not self.note:
                self._safe_sample()  # the last state before the servers stop

    @contextlib.contextmanager
    def generating(self) -> Iterator[None]:
        """Wrap an LLM call: the utilisation alert applies only inside (nesting and threads allowed)."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s) and self._safe_sample():
            pass

    def _safe_sample(self) -> bool:
        """One sample; on a failure NVML cannot recover from, record why in `note` and stop sampling."""
        try:
            self.sample_once()
        except LocalcrewError as exc:
            self.note = f"GPU sampling stopped: {exc.one_line()}"
            return False
        return True

    def sample_once(self) -> None:
        reading = read_gpus(self._provider)
        self.record(reading)
        if self.record_to is not None:
            try:
                append_recording(self.record_to, reading)
            except OSError as exc:  # a full disk must not stop the crew: stop recording, say why
                self.recording_note = f"GPU recording stopped: {self.record_to}: {exc.strerror}"
                self.record_to = None

    def record(self, reading: Reading, *, generating: bool | None = None) -> list[Alert]:
        """Account one reading (live, or replayed from a recording); `generating` overrides the busy mark.
        Returns the alerts this reading raised (all of them, not only the first of each kind)."""
        with self._lock:
            busy = self._busy > 0 if generating is None else generating
            return [a for s in reading.gpus for a in self._record(s, busy)]

    def _record(self, s: GpuSample, busy: bool) -> list[Alert]:
        acc = self._acc.setdefault(s.index, _Acc(s.name, s.uuid))
        acc.samples += 1
        if s.used_bytes is not None:
            acc.peak = s.used_bytes if acc.peak is None else max(acc.peak, s.used_bytes)
        if s.util_pct is not None:
            acc.util_sum += s.util_pct
            acc.util_n += 1
        alerts = check(s, self.thresholds, generating=busy)
        for a in alerts:
            self._alerts.setdefault((a.gpu_index, a.kind), a)
        return alerts

    def summary(self) -> list[GpuPeak]:
        with self._lock:
            return [GpuPeak(i, a.uuid, a.name, a.peak, a.util_sum / a.util_n if a.util_n else None, a.samples)
                    for i, a in sorted(self._acc.items())]

    def alerts(self) -> list[str]:
        return [a.message for a in self.first_alerts()]

    def first_alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._alerts.values())


def render_sampler_markdown(peaks: Sequence[GpuPeak], planned_bytes_by_gpu: Mapping[int, int],
                            alerts: Sequence[str], note: str = "") -> str:
    """The report's GPU section: planned vs measured peak per GPU, then the alerts if any fired."""
    lines = ["## GPU memory: planned vs measured", ""]
    if not peaks:
        lines.append(f"Not measured: {note}" if note else "Not measured: no GPU samples were taken.")
        return "\n".join(lines) + "\n"
    lines += ["| GPU | Name | Planned | Measured peak | Difference | Mean util. | Samples |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    for p in peaks:
        planned = planned_bytes_by_gpu.get(p.index)
        diff = (gib(p.peak_used_bytes - planned, 2, signed=True)
                if planned is not None and p.peak_used_bytes is not None else "—")
        util = f"{p.mean_util_pct:.0f} %" if p.mean_util_pct is not None else "—"
        lines.append(f"| {p.index} | {p.name} | {gib(planned, 2)} | {gib(p.peak_used_bytes, 2)} | {diff} | "
                     f"{util} | {p.samples} |")
    lines += ["", "Measured peak is all memory used on the GPU (other processes and the display included)."]
    if alerts:
        lines += ["", "### Alerts", "", *(f"- {a}" for a in alerts)]
    return "\n".join(lines) + "\n"
