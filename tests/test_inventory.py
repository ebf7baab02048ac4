"""GPU inventory: NVML detection through an injected provider, the real no-driver path, declared GPUs,
exclusion rules, profiles. No GPU is needed; nothing is patched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crew.config import LayoutConfig, exclusion_entries, gpu_entries, load_layout
from crew.errors import ConfigError, HardwareError, UsageError
from crew.hardware.cards import bandwidth_from_clock, lookup
from crew.hardware.declared import parse_exclusions, parse_gpus
from crew.hardware.inventory import apply_exclusions, load_inventory, system_memory
from crew.hardware.nvml import PynvmlProvider, detect
from crew.hardware.profiles import PROFILES, get_profile
from crew.hardware.types import ExclusionRule, GpuInfo
from crew.units import GB
from tests.layouts import FLEET_YAML, FOUR_3060, GIB, MIB, MIXED, FakeNvml, ram


def test_detect_multi_gpu_snapshot() -> None:
    found = detect(FakeNvml(FOUR_3060))
    assert [g.index for g in found.gpus] == [0, 1, 2, 3] and found.note == ""
    g0 = found.gpus[0]
    assert (g0.name, g0.uuid, g0.total_bytes, g0.used_bytes) == (
        "NVIDIA GeForce RTX 3060",
        "GPU-3060-0000",
        12 * GIB,
        1100 * MIB,
    )
    assert g0.free_bytes == 12 * GIB - 1100 * MIB
    assert g0.compute_capability == "8.6" and g0.driver_version == "560.35.03"
    assert g0.pci_bus_id == "00000000:01:00.0"
    # 192 bit x 7501 MHz x 2 (double data rate) = 360 GB/s, from NVML's own numbers
    assert g0.bandwidth_source == "nvml" and abs((g0.bandwidth_bytes_per_s or 0) - 360 * GB) < 0.01 * 360 * GB


def test_bandwidth_falls_back_to_card_table() -> None:
    g = detect(FakeNvml(MIXED)).gpus[1]
    assert g.compute_capability == "12.0"
    assert (g.bandwidth_source, g.bandwidth_bytes_per_s) == ("table", 448 * GB)


def test_no_gpus_and_no_driver_are_normal_outcomes() -> None:
    assert detect(FakeNvml([])).gpus == ()
    assert "no GPUs" in detect(FakeNvml([])).note
    out = detect(FakeNvml(fail="the NVIDIA driver is not installed"))
    assert out.gpus == () and "driver is not installed" in out.note and "CPU" in out.note


def test_real_nvml_on_this_machine_has_no_driver() -> None:
    """No GPU here: the real provider must explain it, not raise."""
    out = detect(PynvmlProvider())
    assert out.gpus == ()
    assert "planning for the CPU" in out.note


class _FakeModule:
    """A stand-in for the pynvml module, to check the one real call site maps NVML's errors."""

    class NVMLError(Exception):
        pass

    NVML_CLOCK_MEM = 2

    def __init__(self, init_error: str | None = None) -> None:
        self.init_error, self.calls = init_error, []  # type: ignore[var-annotated]
        self.NVMLError_NotSupported = type("NVMLError_NotSupported", (self.NVMLError,), {})

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        self.calls.append("init")
        if self.init_error:
            raise type(self.init_error, (self.NVMLError,), {})("boom")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.calls.append("shutdown")

    def nvmlSystemGetDriverVersion(self) -> bytes:  # noqa: N802
        return b"550.1"

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:  # noqa: N802
        return b"NVIDIA GeForce RTX 3090"

    def nvmlDeviceGetUUID(self, h: int) -> str:  # noqa: N802
        return "GPU-abc"

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:  # noqa: N802
        return type("Pci", (), {"busId": b"00000000:0A:00.0"})()

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:  # noqa: N802
        return type("Mem", (), {"total": 24 * GIB, "free": 23 * GIB, "used": GIB})()

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:  # noqa: N802
        return (8, 6)

    def nvmlDeviceGetMemoryBusWidth(self, h: int) -> int:  # noqa: N802
        raise self.NVMLError_NotSupported("not supported")

    def nvmlDeviceGetMaxClockInfo(self, h: int, kind: int) -> int:  # noqa: N802
        return 9751


def test_pynvml_provider_maps_devices_and_unsupported_fields() -> None:
    module = _FakeModule()
    provider = PynvmlProvider(module)
    (g,) = detect(provider).gpus
    assert (g.name, g.uuid, g.pci_bus_id, g.driver_version) == (
        "NVIDIA GeForce RTX 3090",
        "GPU-abc",
        "00000000:0A:00.0",
        "550.1",
    )
    assert g.memory_bus_width_bits is None and g.bandwidth_source == "table"  # NotSupported → the table
    provider.open()  # lazy and once
    assert module.calls == ["init"]
    provider.close()
    assert module.calls == ["init", "shutdown"]


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("NVMLError_LibraryNotFound", "driver is not installed"),
        ("NVMLError_DriverNotLoaded", "not loaded"),
        ("NVMLError_NoPermission", "no permission"),
    ],
)
def test_pynvml_provider_explains_why_there_is_no_gpu(error: str, words: str) -> None:
    out = detect(PynvmlProvider(_FakeModule(init_error=error)))
    assert out.gpus == () and words in out.note


def test_driver_library_mismatch_is_an_error_to_act_on() -> None:
    with pytest.raises(HardwareError, match="reboot"):
        detect(PynvmlProvider(_FakeModule(init_error="NVMLError_LibRmVersionMismatch")))


def test_card_table() -> None:
    assert lookup("NVIDIA GeForce RTX 3060 Ti") is not None
    assert lookup("NVIDIA GeForce RTX 3060 Ti").bandwidth_bytes_per_s == 448 * GB  # type: ignore[union-attr]
    assert lookup("NVIDIA GeForce RTX 3060", 8 * GIB).bandwidth_bytes_per_s == 240 * GB  # type: ignore[union-attr]
    assert lookup("NVIDIA GeForce RTX 3060", 12 * GIB).bandwidth_bytes_per_s == 360 * GB  # type: ignore[union-attr]
    assert lookup("Mystery Card") is None
    assert bandwidth_from_clock(None, 7501) is None
    assert bandwidth_from_clock(5120, 1215) == 1_555_200_000_000  # A100 40 GB


@pytest.mark.parametrize(("name", "gbs"), [
    ("NVIDIA GeForce RTX 3080 Ti Laptop GPU", 512),  # was matched to the desktop 3080 Ti: 912
    ("NVIDIA GeForce RTX 3080 Ti", 912),
    ("NVIDIA GeForce RTX 3080 Laptop GPU", 448),
    ("NVIDIA GeForce RTX 3050 Ti Laptop GPU", 192),
    ("NVIDIA GeForce RTX 3060 Laptop GPU", 336),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", 576),
    ("NVIDIA GeForce RTX 4060 Laptop GPU", 256),
    ("NVIDIA GeForce RTX 4060", 272),
    ("GeForce RTX 2080 Super with Max-Q Design", 448),
    ("NVIDIA GeForce RTX 2060 Mobile", 336),
])
def test_laptop_parts_are_not_desktop_cards(name: str, gbs: int) -> None:
    spec = lookup(name)
    assert spec is not None and spec.bandwidth_bytes_per_s == gbs * GB


def test_a_laptop_part_not_in_the_table_has_no_bandwidth_rather_than_the_desktop_s() -> None:
    assert lookup("NVIDIA GeForce RTX 5090 Laptop GPU") is None  # the desktop 5090 is in the table
    assert lookup("NVIDIA GeForce RTX 5090") is not None


def test_every_laptop_entry_is_reachable_by_its_nvml_name() -> None:
    from crew.hardware.cards import CARDS

    for card in CARDS:
        if card.key.endswith(" laptop"):
            name = "NVIDIA GeForce " + card.key.removesuffix(" laptop").upper().replace("SUPER", "Super")
            assert lookup(name + " Laptop GPU") is card, card.key


def test_declared_fleet(tmp_path: Path) -> None:
    (tmp_path / "gpu_layout.yaml").write_text(FLEET_YAML)
    layout = load_layout(tmp_path / "gpu_layout.yaml")
    inv = load_inventory(layout, ram=lambda: ram())
    assert inv.source == "declared" and len(inv.gpus) == 12
    assert sorted({g.host for g in inv.gpus}) == ["ws1", "ws2", "ws3", "ws4", "ws5"]
    assert [g.index for g in inv.gpus if g.host == "ws1"] == [0, 1, 2, 3]
    ws4 = [g for g in inv.gpus if g.host == "ws4"]
    assert [g.uuid for g in ws4] == ["GPU-ws4-3090", "GPU-ws4-5060"]
    assert inv.excluded[inv.gpus.index(ws4[1])] == "no sm_120 kernels in this llama.cpp build"
    assert inv.gpus[0].bandwidth_source == "table" and inv.gpus[-1].bandwidth_source == "declared"
    assert inv.usable_bytes(0, layout.reserve_bytes) == 12 * GIB - 512 * MIB  # total - reserve (declared)


def test_detected_usable_is_free_minus_reserve() -> None:
    inv = load_inventory(LayoutConfig(), nvml=FakeNvml(FOUR_3060), ram=lambda: ram())
    assert inv.source == "detected" and inv.detected
    assert inv.usable_bytes(0, 512 * MIB) == 12 * GIB - 1100 * MIB - 512 * MIB


def test_no_gpu_inventory_is_the_cpu_with_real_ram() -> None:
    inv = load_inventory(LayoutConfig(), nvml=FakeNvml(fail="no driver"))
    assert inv.source == "cpu" and inv.gpus == () and inv.ram_usable_bytes > 0
    assert system_memory().total_bytes >= inv.ram.available_bytes > 0


def _gpu(**kw: Any) -> GpuInfo:
    base: dict[str, Any] = {
        "index": 0,
        "name": "NVIDIA GeForce RTX 5060 Ti",
        "total_bytes": 16 * GIB,
        "uuid": "GPU-X",
        "compute_capability": "12.0",
        "host": "local",
    }
    return GpuInfo(**{**base, **kw})


@pytest.mark.parametrize(
    ("rule", "hit"),
    [
        ({"name": "5060"}, True),
        ({"name": "*5060 ti"}, True),
        ({"name": "3090"}, False),
        ({"uuid": "gpu-x"}, True),
        ({"index": 0}, True),
        ({"index": 1}, False),
        ({"compute_capability": "12.0"}, True),
        ({"compute_capability": "12"}, True),
        ({"compute_capability": "8.6"}, False),
        ({"host": "ws2"}, False),
        ({"name": "5060", "index": 1}, False),
    ],
)
def test_exclusion_rules(rule: dict[str, Any], hit: bool) -> None:
    (r,) = parse_exclusions(exclusion_entries([{**rule, "reason": "why"}]))
    assert apply_exclusions((_gpu(),), (r,)) == (("why",) if hit else (None,))


@pytest.mark.parametrize(
    ("gpus", "message"),
    [
        ([{"memory_gib": 12}], "gpu_layout.yaml: gpus[0].name: missing required key"),
        ([{"name": "RTX 3060"}], "gpu_layout.yaml: gpus[0].memory_gib: missing required key"),
        (
            [{"name": "RTX 3060", "memory_gib": "lots"}],
            "gpu_layout.yaml: gpus[0].memory_gib: expected a number",
        ),
        ([{"name": "RTX 3060", "memory_gib": 12, "vram": 1}], "gpu_layout.yaml: gpus[0].vram: unknown key"),
        (
            [{"name": "A", "memory_gib": 12}, {"name": "B", "memory_gib": 12, "index": 0}],
            "gpu_layout.yaml: gpus[1].index: GPU 0 of host 'local' is declared twice",
        ),
        (
            [
                {"name": "A", "memory_gib": 12, "uuid": "GPU-1"},
                {"name": "B", "memory_gib": 12, "uuid": "GPU-1"},
            ],
            "gpu_layout.yaml: gpus[1].uuid: UUID GPU-1 is declared twice",
        ),
        (
            [{"name": "A", "memory_gib": 12, "uuid": "GPU-1", "count": 2}],
            "gpu_layout.yaml: gpus[0].uuid: a UUID names one",
        ),
        (
            [{"name": "A", "memory_gib": 12, "count": 0}],
            "gpu_layout.yaml: gpus[0].count: expected a whole number",
        ),
        (
            [{"name": "A", "memory_gib": 12, "compute_capability": "sm86"}],
            "gpu_layout.yaml: gpus[0].compute_capability: 'sm86' is not a compute capability",
        ),
    ],
)
def test_declared_gpu_errors_name_file_and_key(gpus: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_gpus(gpu_entries(gpus))
    assert err.value.one_line().startswith(message)
    assert err.value.fix


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"name": "5060"}], "gpu_layout.yaml: exclude[0].reason: an exclusion needs a reason"),
        ([{"reason": "x"}], "gpu_layout.yaml: exclude[0]: the rule selects no GPU"),
        ([{"model": "x", "reason": "x"}], "gpu_layout.yaml: exclude[0].model: unknown key"),
        ([{"index": "one", "reason": "x"}], "gpu_layout.yaml: exclude[0].index: expected a whole number"),
    ],
)
def test_exclusion_errors_name_file_and_key(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        exclusion_entries(rules)
    assert err.value.one_line().startswith(message)


def test_profiles() -> None:
    assert list(PROFILES) == ["2x-rtx3060", "3x-rtx3060", "4x-rtx3060", "rtx3090", "rtx3090+rtx5060ti", "cpu",
                              "fleet-5"]
    mixed = load_inventory(LayoutConfig(), profile="rtx3090+rtx5060ti")
    assert mixed.excluded[0] is None and "12.0" in (mixed.excluded[1] or "")
    assert [g.total_bytes for g in get_profile("4x-rtx3060").gpus] == [12 * GIB] * 4
    assert get_profile("cpu").gpus == ()
    with pytest.raises(UsageError, match="unknown profile 'rtx4090'"):
        get_profile("rtx4090")


def test_rule_object_defaults() -> None:
    assert ExclusionRule(reason="r", host="ws1").matches(_gpu(host="ws1"))
