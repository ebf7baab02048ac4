"""Live sampling, alerts and the crew-run sampler, fed by an injected fake NVML (nothing patched)."""

from __future__ import annotations

import json
import time
from argparse import Namespace

import pytest

from crew.errors import ConfigError, HardwareError
from crew.hardware.nvml import NvmlUnavailable
from crew.monitor.alerts import Thresholds, check, thresholds_from
from crew.monitor.live import GpuSample, PynvmlLive, open_live, read_gpus
from crew.monitor.procs import describe, server_label
from crew.monitor.sampler import GpuPeak, GpuSampler, render_sampler_markdown
from tests.conftest import cli_args
from tests.layouts import GIB, FakeNvml
from tests.monitor_fakes import FakeLiveNvml, Live, three_gpus


def sample(**kw: object) -> GpuSample:
    base: dict[str, object] = dict(index=0, name="RTX 3060", uuid="GPU-x", total_bytes=100, used_bytes=50,
                                   util_pct=50, temp_c=60, power_mw=100_000)
    return GpuSample(**{**base, **kw})  # type: ignore[arg-type]


def test_read_gpus_multi_gpu_with_one_failing_query() -> None:
    nvml = three_gpus()
    assert open_live(nvml) == ""
    r = read_gpus(nvml)
    assert [g.index for g in r.gpus] == [0, 1, 2]
    assert r.gpus[0].util_pct == 97 and r.gpus[0].processes == ((4242, 9 * GIB),)
    assert r.gpus[0].power_mw == 150_000
    bad = r.gpus[2]
    assert bad.temp_c is None and bad.util_pct == 40 and bad.used_bytes is not None
    assert bad.errors == ("temperature: temp query failed (Unknown Error)",)


def test_a_gpu_whose_memory_query_fails_keeps_its_other_figures() -> None:
    nvml = FakeLiveNvml(gpus=three_gpus().gpus[:1], live=[Live(fails=frozenset({"memory"}))])
    (g,) = read_gpus(nvml).gpus
    assert g.used_bytes is None and g.total_bytes is None and g.used_pct is None and g.util_pct == 50


def test_no_driver_and_zero_gpus_are_notes() -> None:
    assert "no NVIDIA GPU" in open_live(FakeLiveNvml(fail="the NVIDIA driver is not installed"))
    assert open_live(FakeLiveNvml()) == "NVML reports no GPUs"


def test_no_driver_for_real() -> None:
    """This machine has no NVIDIA driver (skipped where one is loaded): a note, never an exception."""
    live = PynvmlLive()
    try:
        live.open()
    except NvmlUnavailable as exc:
        assert open_live(PynvmlLive()) == f"no NVIDIA GPU can be monitored: {exc}"
        with GpuSampler(provider=PynvmlLive(), interval_s=0.01) as s:
            pass
        assert s.summary() == [] and s.alerts() == [] and "no NVIDIA GPU" in s.note
        return
    pytest.skip(reason="an NVIDIA driver is loaded here")


@pytest.mark.parametrize(("kw", "generating", "kinds"), [
    ({"used_bytes": 92, "total_bytes": 100}, False, []),            # at the threshold: not above
    ({"used_bytes": 93, "total_bytes": 100}, False, ["vram"]),
    ({"temp_c": 83}, False, []),
    ({"temp_c": 84}, False, ["temp"]),
    ({"util_pct": 19}, False, []),                                  # idle and not generating: fine
    ({"util_pct": 19}, True, ["util"]),
    ({"util_pct": 20}, True, []),
    ({"util_pct": None, "temp_c": None, "used_bytes": None}, True, []),  # unknown is not an alert
])
def test_alerts_fire_at_the_thresholds(kw: dict[str, object], generating: bool, kinds: list[str]) -> None:
    assert [a.kind for a in check(sample(**kw), Thresholds(), generating=generating)] == kinds


def test_thresholds_from_layout() -> None:
    assert thresholds_from(None) == Thresholds(92.0, 83.0, 20.0)
    assert thresholds_from({"vram_pct": 80, "temp_c": 75.5}) == Thresholds(80.0, 75.5, 20.0)
    with pytest.raises(ConfigError, match="unknown alert key 'vram'"):
        thresholds_from({"vram": 80})
    with pytest.raises(ConfigError, match="alerts.temp_c"):
        thresholds_from({"temp_c": "hot"})


def test_sampler_records_peaks_means_and_alerts() -> None:
    nvml = three_gpus()
    with GpuSampler(provider=nvml, interval_s=0.01) as s:
        with s.generating():
            time.sleep(0.05)
        nvml.gpus[0].used_bytes += GIB  # a peak in the middle of the run
        time.sleep(0.05)
        nvml.gpus[0].used_bytes -= GIB
    peaks = {p.index: p for p in s.summary()}
    assert s.note == ""
    assert peaks[0].peak_used_bytes == 400 * 1024**2 + GIB and peaks[0].samples >= 3
    assert peaks[1].mean_util_pct == 5.0 and peaks[2].uuid == "GPU-3060-0002"
    alerts = s.alerts()
    assert any("GPU 1" in a and "VRAM" in a for a in alerts)
    assert any("GPU 1" in a and "84 °C" in a for a in alerts)
    assert any("GPU 1" in a and "while generating" in a for a in alerts)  # util 5 % inside generating()
    assert len(alerts) == 3  # each alert once, however many samples crossed it


def test_sampler_without_generation_raises_no_util_alert() -> None:
    with GpuSampler(provider=three_gpus(), interval_s=10) as s:
        pass  # one sample at enter and one at exit, even when the run is shorter than the interval
    assert s.summary()[0].samples == 2
    assert not any("generating" in a for a in s.alerts())


def test_render_sampler_markdown() -> None:
    peaks = [GpuPeak(0, "GPU-a", "RTX 3090", 10 * GIB, 61.5, 12), GpuPeak(1, None, "RTX 3060", None, None, 3)]
    md = render_sampler_markdown(peaks, {0: 9 * GIB}, ["GPU 0 (RTX 3090): 85 °C, above 83 °C"])
    assert "| 0 | RTX 3090 | 9.00 GiB | 10.00 GiB | +1.00 GiB | 62 % | 12 |" in md
    assert "| 1 | RTX 3060 | — | — | — | — | 3 |" in md
    assert "### Alerts" in md and "- GPU 0 (RTX 3090): 85 °C" in md
    none = render_sampler_markdown([], {}, [], note="no NVIDIA GPU can be monitored: no driver")
    assert "Not measured: no NVIDIA GPU" in none and "Alerts" not in none


def test_server_labels_from_command_lines() -> None:
    assert server_label(("python", "-m", "llama_cpp.server", "--host", "127.0.0.1", "--port", "8081")) \
        == "llama.cpp :8081"
    assert server_label(("python", "-m", "llama_cpp.server", "--config_file", "gpu0.json")) == "llama.cpp gpu0"
    assert server_label(("/usr/bin/ollama", "serve")) == "ollama"
    assert server_label(("Xorg",)) is None and server_label(None) is None
    cmd = {1: ("python", "-m", "llama_cpp.server", "--port", "9000"), 2: ("Xorg",)}
    assert describe(((1, 2 * GIB), (2, None), (3, None)), cmd.get) == [
        "llama.cpp :9000 (pid 1) 2.0 GiB", "other (pid 2)", "other (pid 3)"]


def ns(**kw: object) -> Namespace:
    return cli_args("monitor", **{"once": True, "json": True, **kw})


def test_monitor_once_json_and_run_log(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from crew.cli.monitor import run_monitor

    log = tmp_path / "run.jsonl"
    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text("alerts: {temp_c: 70}\n", encoding="utf-8")
    assert run_monitor(ns(log=str(log), layout=str(layout)), provider=three_gpus()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "localcrew.monitor/1" and len(out["gpus"]) == 3
    assert out["gpus"][2]["temp_c"] is None and out["gpus"][2]["errors"]
    kinds = {(a["gpu_index"], a["kind"]) for a in out["alerts"]}
    assert kinds == {(0, "temp"), (1, "temp"), (1, "vram")}  # temp_c 70 from the layout
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["event"] for r in logged} == {"gpu_alert"} and len(logged) == 3


def test_monitor_once_table_and_no_driver(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from crew.cli.monitor import run_monitor

    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width; pytest's is 80

    assert run_monitor(ns(json=False), provider=three_gpus()) == 0
    out = capsys.readouterr().out
    assert "RTX 3090" in out and "84 °C" in out and "error: temperature" in out
    with pytest.raises(HardwareError, match="no NVIDIA GPU can be monitored") as err:  # the same code as
        run_monitor(ns(json=False), provider=FakeLiveNvml(fail="the NVIDIA driver is not installed"))
    assert err.value.exit_code == 2  # `validate --gpu` without a driver: one exit code per kind of failure


def test_fake_nvml_without_live_queries_is_not_enough() -> None:
    # the detection fake lacks the live queries: the protocol makes that a type error, here an AttributeError
    with pytest.raises(AttributeError):
        read_gpus(FakeNvml(gpus=three_gpus().gpus))  # type: ignore[arg-type]


def test_sampler_survives_a_driver_that_needs_a_reboot() -> None:
    from crew.errors import HardwareError

    class Mismatch(FakeLiveNvml):
        def utilization_pct(self, index: int) -> int | None:
            raise HardwareError("the NVIDIA driver and its NVML library differ in version", where="NVML",
                                fix="reboot")

    with GpuSampler(provider=Mismatch(gpus=three_gpus().gpus, live=three_gpus().live), interval_s=0.01) as s:
        time.sleep(0.03)
    assert s.summary() == [] and s.note.startswith("GPU sampling stopped: NVML: the NVIDIA driver")


def test_monitor_against_a_saved_plan(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from crew.cli import main
    from crew.cli.monitor import _load_plan, _planned_agents, run_monitor
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)  # the shipped agents.yaml
    saved = tmp_path / "plan.json"
    assert main(["--profile", "2x-rtx3060", "--save", str(saved), "--json"]) == 0
    capsys.readouterr()
    assert run_monitor(ns(plan=str(saved)), provider=three_gpus()) == 0
    gpus = json.loads(capsys.readouterr().out)["gpus"]
    plan = _load_plan(str(saved))
    assert gpus[0]["planned_bytes"] == plan.gpus[0].planned_bytes and gpus[0]["agents"] == list(plan.gpus[0].agents)
    assert gpus[2]["planned_bytes"] is None  # the plan has two GPUs, the rig three
    assert {a.agent for a in _planned_agents(plan)} == {a.name for a in plan.agents}
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a plan saved by plan-gpus"):
        _load_plan(str(tmp_path / "bad.json"))


class _FakePynvml:
    """A stand-in for the pynvml module itself, to test PynvmlLive's translation (module injection)."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's own class names
        pass

    class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
        pass

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.lost: set[int] = set()

    def nvmlInit(self) -> None:  # noqa: N802
        pass

    def nvmlShutdown(self) -> None:  # noqa: N802
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetUtilizationRates(self, h: int) -> object:  # noqa: N802
        if h in self.lost:
            raise self.NVMLError_GpuIsLost()
        return Namespace(gpu=42 + h, memory=10)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:  # noqa: N802
        return 65

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        if h == 1:
            raise self.NVMLError_NotSupported()  # GeForce cards often hide power
        return 181_500

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[object]:  # noqa: N802
        return [Namespace(pid=77, usedGpuMemory=3 * GIB), Namespace(pid=78, usedGpuMemory=None)]


def test_pynvml_live_translates_the_module() -> None:
    mod = _FakePynvml()
    live = PynvmlLive(module=mod)
    live.open()
    assert live.utilization_pct(1) == 43 and live.temperature_c(0) == 65
    assert live.power_mw(0) == 181_500 and live.power_mw(1) is None  # NotSupported: unknown, not an error
    assert live.processes(0) == ((77, 3 * GIB), (78, None))
    mod.lost.add(1)
    with pytest.raises(NvmlUnavailable, match="fallen off the bus"):
        live.utilization_pct(1)
    live.close()


def test_one_gpu_alert_record_shape_for_the_run_and_the_monitor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The crew run logs the sampler's first alerts; `monitor --log` logs live ones: the same fields."""
    from crew.cli.monitor import run_monitor
    from crew.journal.events import fields_of
    from crew.journal.records import GpuAlert
    from crew.monitor.live import Reading

    sampler = GpuSampler(thresholds=Thresholds(temp_c=70))
    hot = GpuSample(0, "RTX 3090", None, 24 * GIB, 1 * GIB, 50, 84, 200_000)
    sampler.record(Reading((hot,)), generating=False)
    (first,) = sampler.first_alerts()
    log = tmp_path / "run.jsonl"
    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text("alerts: {temp_c: 70}\n", encoding="utf-8")
    assert run_monitor(ns(log=str(log), layout=str(layout)), provider=three_gpus()) == 0
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert set(fields_of(GpuAlert.of(first))) == {"gpu", "kind", "value", "limit", "message"}
    assert {k for k in logged[0] if k not in ("ts", "event")} == set(fields_of(GpuAlert.of(first)))
