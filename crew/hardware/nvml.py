"""GPU detection through NVML. `PynvmlProvider` is the one place in localcrew that calls pynvml.

NVML is initialised on first use and shut down at exit. "No driver", "no NVML library" and "zero GPUs" are
normal outcomes with a note for the user, not errors: the planner then plans for the CPU. Only a state the
user must fix before anything can work on the GPUs (a driver/library version mismatch) raises.

Tests pass their own provider (tests/layouts.py `FakeNvml`) to `detect`; nothing is patched.
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from crew.errors import HardwareError
from crew.hardware.cards import bandwidth_from_clock, lookup
from crew.hardware.types import GpuInfo

T = TypeVar("T")


class NvmlUnavailable(Exception):
    """NVML cannot be used at all on this machine; `str(exc)` says why, in words for the user."""


class MemoryInfo(NamedTuple):
    """One GPU's memory as NVML reports it now (a tuple still: callers once unpacked three ints)."""

    total_bytes: int
    free_bytes: int  # what other processes leave
    used_bytes: int


class NvmlProvider(Protocol):
    """What detection needs from NVML. Optional facts return None when the device does not support them."""

    def open(self) -> None: ...  # raises NvmlUnavailable (or HardwareError)
    def driver_version(self) -> str | None: ...
    def device_count(self) -> int: ...
    def name(self, index: int) -> str: ...
    def uuid(self, index: int) -> str | None: ...
    def pci_bus_id(self, index: int) -> str | None: ...
    def memory(self, index: int) -> MemoryInfo: ...
    def compute_capability(self, index: int) -> tuple[int, int] | None: ...
    def memory_bus_width_bits(self, index: int) -> int | None: ...
    def max_memory_clock_mhz(self, index: int) -> int | None: ...


@dataclass(frozen=True)
class Detection:
    gpus: tuple[GpuInfo, ...]
    note: str = ""  # why there are none, or what could not be read


def detect(provider: NvmlProvider) -> Detection:
    """A snapshot of every GPU NVML reports, in PCI bus order (what CUDA_DEVICE_ORDER=PCI_BUS_ID gives)."""
    try:
        provider.open()
        count = provider.device_count()
    except NvmlUnavailable as exc:
        return Detection((), f"no NVIDIA GPU can be used: {exc}; planning for the CPU")
    if count == 0:
        return Detection((), "NVML reports no GPUs; planning for the CPU")
    driver = provider.driver_version()
    gpus, skipped = [], []
    for i in range(count):
        try:
            gpus.append(_snapshot(provider, i, driver))
        except NvmlUnavailable as exc:  # e.g. a GPU that fell off the bus: plan without it, and say so
            skipped.append(f"GPU {i} skipped: {exc}")
    note = "; ".join(skipped)
    if not gpus:
        return Detection((), f"{note}; planning for the CPU")
    return Detection(tuple(gpus), note)


def _snapshot(p: NvmlProvider, i: int, driver: str | None) -> GpuInfo:
    name = p.name(i)
    mem = p.memory(i)
    cc = p.compute_capability(i)
    width, clock = p.memory_bus_width_bits(i), p.max_memory_clock_mhz(i)
    card = lookup(name, mem.total_bytes)
    bandwidth, source = bandwidth_from_clock(width, clock), "nvml"
    if bandwidth is None and card is not None:
        bandwidth, source = card.bandwidth_bytes_per_s, "table"
    return GpuInfo(
        index=i,
        name=name,
        total_bytes=mem.total_bytes,
        free_bytes=mem.free_bytes,
        used_bytes=mem.used_bytes,
        uuid=p.uuid(i),
        pci_bus_id=p.pci_bus_id(i),
        compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
        driver_version=driver,
        bandwidth_bytes_per_s=bandwidth,
        bandwidth_source=source if bandwidth else "unknown",
        memory_bus_width_bits=width,
        memory_clock_mhz=clock,
    )


# ------------------------------------------------------------------------------------ the real provider

_REASONS = {
    "NVMLError_LibraryNotFound": "the NVIDIA driver is not installed (libnvidia-ml.so.1 not found)",
    "NVMLError_DriverNotLoaded": "the NVIDIA driver is installed but not loaded",
    "NVMLError_NoPermission": "no permission to query the NVIDIA driver",
    "NVMLError_GpuIsLost": "the GPU has fallen off the bus",
}


class PynvmlProvider:
    """NVML through nvidia-ml-py. `module` lets a test hand in a stand-in for the pynvml module itself."""

    def __init__(self, module: Any = None) -> None:
        self._nvml = module
        self._handles: dict[int, Any] = {}
        self._open = False

    def open(self) -> None:
        if self._open:
            return
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                raise NvmlUnavailable("nvidia-ml-py is not installed (run `uv sync`)") from None
            self._nvml = pynvml
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as exc:
            self._raise(exc)
        self._open = True
        atexit.register(self.close)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._handles.clear()
            with contextlib.suppress(self._nvml.NVMLError):  # at exit there is nobody left to tell
                self._nvml.nvmlShutdown()

    def _raise(self, exc: Exception) -> None:
        kind = type(exc).__name__
        if kind == "NVMLError_LibRmVersionMismatch":
            raise HardwareError(
                "the NVIDIA driver and its NVML library differ in version",
                where="NVML",
                fix="reboot after the driver update (or reload the nvidia kernel module)",
            ) from None
        raise NvmlUnavailable(_REASONS.get(kind, f"NVML error: {exc}")) from None

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except self._nvml.NVMLError as exc:
            self._raise(exc)
            raise  # unreachable: _raise always raises

    def _optional(self, fn: Callable[..., T], *args: Any) -> T | None:
        """A fact some devices do not report (NotSupported and the like) is None, not a failure."""
        try:
            return fn(*args)
        except self._nvml.NVMLError as exc:
            if type(exc).__name__ in ("NVMLError_GpuIsLost", "NVMLError_LibRmVersionMismatch"):
                self._raise(exc)
            return None

    def _handle(self, i: int) -> Any:
        if i not in self._handles:
            self._handles[i] = self._call(self._nvml.nvmlDeviceGetHandleByIndex, i)
        return self._handles[i]

    def driver_version(self) -> str | None:
        return _text(self._optional(self._nvml.nvmlSystemGetDriverVersion))

    def device_count(self) -> int:
        return int(self._call(self._nvml.nvmlDeviceGetCount))

    def name(self, index: int) -> str:
        return _text(self._call(self._nvml.nvmlDeviceGetName, self._handle(index))) or f"GPU {index}"

    def uuid(self, index: int) -> str | None:
        return _text(self._optional(self._nvml.nvmlDeviceGetUUID, self._handle(index)))

    def pci_bus_id(self, index: int) -> str | None:
        info = self._optional(self._nvml.nvmlDeviceGetPciInfo, self._handle(index))
        return _text(getattr(info, "busId", None)) if info is not None else None

    def memory(self, index: int) -> MemoryInfo:
        m = self._call(self._nvml.nvmlDeviceGetMemoryInfo, self._handle(index))
        return MemoryInfo(int(m.total), int(m.free), int(m.used))

    def compute_capability(self, index: int) -> tuple[int, int] | None:
        cc = self._optional(self._nvml.nvmlDeviceGetCudaComputeCapability, self._handle(index))
        return (int(cc[0]), int(cc[1])) if cc else None

    def memory_bus_width_bits(self, index: int) -> int | None:
        width = self._optional(self._nvml.nvmlDeviceGetMemoryBusWidth, self._handle(index))
        return int(width) if width else None

    def max_memory_clock_mhz(self, index: int) -> int | None:
        clock = self._optional(
            self._nvml.nvmlDeviceGetMaxClockInfo, self._handle(index), self._nvml.NVML_CLOCK_MEM
        )
        return int(clock) if clock else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
