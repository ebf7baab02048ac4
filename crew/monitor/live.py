"""Live GPU readings: utilisation, memory, temperature, power and the processes on each GPU.

`LiveNvml` extends the detection protocol (crew.hardware.nvml.NvmlProvider) with the four live queries.
`PynvmlLive` implements them on top of `PynvmlProvider`, reusing its pynvml module handle, its lazy init
and its shutdown at exit, so there is still one NVML session and one place that imports pynvml.
`read_gpus` turns a provider into frozen snapshots; a query that fails on one GPU becomes None plus a note,
never an exception, so one bad GPU cannot blank the whole view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from crew.hardware.nvml import NvmlProvider, NvmlUnavailable, PynvmlProvider

T = TypeVar("T")


class LiveNvml(NvmlProvider, Protocol):
    def utilization_pct(self, index: int) -> int | None: ...
    def temperature_c(self, index: int) -> int | None: ...
    def power_mw(self, index: int) -> int | None: ...
    def processes(self, index: int) -> tuple[tuple[int, int | None], ...]: ...  # (pid, used bytes)


class PynvmlLive(PynvmlProvider):
    """The real provider with the live queries. Unsupported facts (many GeForce cards hide power) are None."""

    def utilization_pct(self, index: int) -> int | None:
        rates = self._optional(self._nvml.nvmlDeviceGetUtilizationRates, self._handle(index))
        return int(rates.gpu) if rates is not None else None

    def temperature_c(self, index: int) -> int | None:
        t = self._optional(self._nvml.nvmlDeviceGetTemperature, self._handle(index),
                           self._nvml.NVML_TEMPERATURE_GPU)
        return int(t) if t is not None else None

    def power_mw(self, index: int) -> int | None:
        p = self._optional(self._nvml.nvmlDeviceGetPowerUsage, self._handle(index))
        return int(p) if p is not None else None

    def processes(self, index: int) -> tuple[tuple[int, int | None], ...]:
        procs = self._optional(self._nvml.nvmlDeviceGetComputeRunningProcesses, self._handle(index)) or []
        # usedGpuMemory is None under WDDM and in some containers: unknown, not zero
        return tuple((int(p.pid), _int_or_none(getattr(p, "usedGpuMemory", None))) for p in procs)


def _int_or_none(v: object) -> int | None:
    return int(v) if isinstance(v, int) else None


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    uuid: str | None
    total_bytes: int | None
    used_bytes: int | None
    util_pct: int | None
    temp_c: int | None
    power_mw: int | None
    processes: tuple[tuple[int, int | None], ...] = ()
    errors: tuple[str, ...] = ()  # queries that failed on this GPU, in words

    @property
    def used_pct(self) -> float | None:
        if self.used_bytes is None or not self.total_bytes:
            return None
        return 100.0 * self.used_bytes / self.total_bytes


@dataclass(frozen=True)
class Reading:
    gpus: tuple[GpuSample, ...]
    note: str = ""  # why there are none (no driver, no GPUs)


def open_live(provider: LiveNvml) -> str:
    """Initialise NVML; '' when usable, else the reason in words (the no-driver path is not an error)."""
    try:
        provider.open()
        if provider.device_count() == 0:
            return "NVML reports no GPUs"
    except NvmlUnavailable as exc:
        return f"no NVIDIA GPU can be monitored: {exc}"
    return ""


def read_gpus(provider: LiveNvml) -> Reading:
    """One sample of every GPU. Call `open_live` first; a failed count is a note, not an exception."""
    try:
        count = provider.device_count()
    except NvmlUnavailable as exc:
        return Reading((), f"no NVIDIA GPU can be monitored: {exc}")
    return Reading(tuple(_sample(provider, i) for i in range(count)))


def _sample(p: LiveNvml, i: int) -> GpuSample:
    errors: list[str] = []

    def get(what: str, fn: Callable[..., T], *args: object) -> T | None:
        try:
            return fn(*args)
        except NvmlUnavailable as exc:
            errors.append(f"{what}: {exc}")
            return None

    name = get("name", p.name, i) or f"GPU {i}"
    mem = get("memory", p.memory, i)
    return GpuSample(
        index=i, name=name, uuid=get("uuid", p.uuid, i),
        total_bytes=mem.total_bytes if mem else None, used_bytes=mem.used_bytes if mem else None,
        util_pct=get("utilisation", p.utilization_pct, i), temp_c=get("temperature", p.temperature_c, i),
        power_mw=get("power", p.power_mw, i), processes=get("processes", p.processes, i) or (),
        errors=tuple(errors),
    )
