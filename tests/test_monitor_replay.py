"""`plan-gpus monitor --replay FILE`: nvidia-smi CSV recordings through the monitor's alerts, peaks and views."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest

from crew.errors import ConfigError, UsageError
from crew.monitor.alerts import Thresholds
from crew.monitor.recorded import parse_recording
from crew.monitor.replay import replay
from tests.conftest import ROOT, cli_args

MIB = 1024**2
DATA = ROOT / "notebooks" / "data"
HEADER = ("timestamp, index, name, uuid, memory.total [MiB], memory.used [MiB], utilization.gpu [%], "
          "temperature.gpu, power.draw [W]")


def ns(**kw: object) -> Namespace:
    return cli_args("monitor", **{"json": True, **kw})


def test_the_shipped_two_gpu_recording_parses_exactly() -> None:
    rec = parse_recording((DATA / "recorded_2x3090.csv").read_text(encoding="utf-8"), "2x3090.csv")
    assert rec.comments[0].startswith("RECORDED on real NVIDIA GPUs")
    assert any("club-3090/issues/1120" in c for c in rec.comments)
    (only,) = rec.readings
    assert only.timestamp == "2026/09/01 03:18:48"
    g0, g1 = only.reading.gpus
    assert (g0.index, g0.name, g0.uuid) == (0, "NVIDIA GeForce RTX 3090", None)
    assert (g0.total_bytes, g0.used_bytes) == (24576 * MIB, 21943 * MIB)
    assert (g1.used_bytes, g1.util_pct, g1.temp_c, g1.power_mw) == (22833 * MIB, 0, 30, 24_000)
    assert g0.processes == () and g0.errors == ()


def test_nounits_and_unsupported_values() -> None:
    text = "\n".join([
        "index, name, memory.total [MiB], memory.used [MiB], utilization.gpu [%], power.draw [W]",
        "0, NVIDIA GeForce RTX 3060, 12288, 5120, 97, [N/A]",
        "1, NVIDIA GeForce RTX 3060, 12288, [Not Supported], [N/A], 170.5",
    ])
    (r,) = parse_recording(text, "x.csv").readings
    a, b = r.reading.gpus
    assert r.timestamp == "" and a.used_bytes == 5120 * MIB and a.util_pct == 97 and a.power_mw is None
    assert a.temp_c is None and a.uuid is None  # columns not queried are unknown, not zero
    assert b.used_bytes is None and b.used_pct is None and b.util_pct is None and b.power_mw == 170_500


def test_a_logged_run_becomes_one_reading_per_round_and_peaks_are_the_samplers() -> None:
    # `-l 5` without a timestamp column: a round ends when an index repeats
    rows = [("0", 4000, 90), ("1", 3000, 10), ("0", 11_400, 95), ("1", 3100, 12), ("0", 6000, 93), ("1", 3000, 0)]
    text = "index, memory.total [MiB], memory.used [MiB], utilization.gpu [%]\n" + "\n".join(
        f"{i}, 12288 MiB, {used} MiB, {util} %" for i, used, util in rows)
    rec = parse_recording(text, "run.csv")
    assert len(rec.readings) == 3 and all(len(r.reading.gpus) == 2 for r in rec.readings)
    out = replay(rec, Thresholds(), generating=True)
    p0, p1 = out.peaks
    assert (p0.peak_used_bytes, p0.samples, round(p0.mean_util_pct or 0, 2)) == (11_400 * MIB, 3, 92.67)
    assert p1.peak_used_bytes == 3100 * MIB
    assert out.busiest == 1  # the round with the most memory used in total
    # GPU 0 crossed 92 % only in round 2; GPU 1 was under 20 % utilisation while generating in every round
    assert [sorted(a.kind for a in alerts) for alerts in out.alerts_by_reading] == [
        ["util"], ["util", "vram"], ["util"]]
    assert len(out.first_alerts) == 2  # one message per GPU and kind, not one per reading


def test_without_generation_the_low_utilisation_alert_stays_off() -> None:
    rec = parse_recording((DATA / "recorded_2x3090.csv").read_text(encoding="utf-8"), "2x3090.csv")
    out = replay(rec, Thresholds(), generating=False)
    assert [(a.gpu_index, a.kind) for a in out.alerts_by_reading[0]] == [(1, "vram")]  # 92.9 % > 92 %
    assert out.first_alerts == ("GPU 1 (NVIDIA GeForce RTX 3090): VRAM 92.9 % used, above 92 %",)
    assert replay(rec, Thresholds(vram_pct=95), generating=False).first_alerts == ()


@pytest.mark.parametrize(("text", "where", "what"), [
    ("", "f.csv", "no nvidia-smi readings"),
    ("# only a comment\n", "f.csv", "no nvidia-smi readings"),
    ("0, RTX 3060, 12288 MiB, 100 MiB\n1, RTX 3060, 12288 MiB, 100 MiB", "f.csv: line 1", "noheader"),
    ("index, memory.total [MiB], memory.used [MiB]\n", "f.csv", "a header but no readings"),
    ("index, memory.total [MiB], memory.used [MiB]\n0, 12288 MiB", "f.csv: line 2", "2 values for 3 columns"),
    ("index, memory.total [MiB], memory.used [MiB]\n0, 12288 MiB, lots", "f.csv: line 2", "not a number"),
    ("index, memory.total [MiB], memory.used [MiB]\n-1, 12288 MiB, 1 MiB", "f.csv: line 2", "index is '-1'"),
])
def test_bad_recordings_say_where_and_how_to_record_one(text: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_recording(text, "f.csv")
    assert err.value.where == where and what in err.value.what and err.value.fix


def test_replay_json_against_a_saved_plan(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from crew.cli import main
    from crew.cli.monitor import _load_plan, run_monitor

    monkeypatch.chdir(ROOT)
    saved = tmp_path / "plan.json"
    assert main(["--profile", "rtx3090", "--save", str(saved), "--json"]) == 0
    capsys.readouterr()
    recording = DATA / "recorded_1x3090_llamacpp.csv"
    assert run_monitor(ns(replay=str(recording), plan=str(saved))) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "localcrew.monitor-replay/1" and out["source"] == str(recording)
    assert any("RECORDED" in c for c in out["comments"])
    (reading,) = out["readings"]
    planned = _load_plan(str(saved)).gpus[0].planned_bytes
    assert reading["gpus"][0]["used_bytes"] == 15005 * MIB and reading["gpus"][0]["planned_bytes"] == planned
    assert out["peaks"][0]["peak_used_bytes"] == 15005 * MIB and out["peaks"][0]["planned_bytes"] == planned
    assert out["alerts"] == [] and reading["alerts"] == []
    assert out["plan_mismatches"] == []  # the plan is for one RTX 3090, the recording is of one


def test_a_recording_of_other_gpus_than_the_plan_says_so(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from crew.cli import main
    from crew.cli.monitor import run_monitor

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "200")
    saved = tmp_path / "plan.json"
    assert main(["--profile", "3x-rtx3060", "--save", str(saved), "--json"]) == 0
    capsys.readouterr()
    recording = str(DATA / "recorded_2x3090.csv")
    assert run_monitor(ns(replay=recording, plan=str(saved))) == 0
    mismatches = json.loads(capsys.readouterr().out)["plan_mismatches"]
    assert mismatches == [
        "GPU 0: the plan is for NVIDIA GeForce RTX 3060, the recording is of NVIDIA GeForce RTX 3090",
        "GPU 1: the plan is for NVIDIA GeForce RTX 3060, the recording is of NVIDIA GeForce RTX 3090",
        "the plan has GPU 2 (NVIDIA GeForce RTX 3060), the recording has no such GPU"]
    assert run_monitor(ns(replay=recording, plan=str(saved), json=False)) == 0
    assert "not of the GPUs this plan was made for" in capsys.readouterr().out


def test_replay_table_logs_alerts_as_they_start(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from crew.cli.monitor import run_monitor

    monkeypatch.setenv("COLUMNS", "200")
    # GPU 0 above 92 % in rounds 1 and 3 only: two starts, so two log lines (the live view logs the same way)
    rec = tmp_path / "gpus.csv"
    rec.write_text("# recorded here for the test\nindex, memory.total [MiB], memory.used [MiB]\n"
                   "0, 1000 MiB, 950 MiB\n0, 1000 MiB, 500 MiB\n0, 1000 MiB, 990 MiB\n", encoding="utf-8")
    log = tmp_path / "run.jsonl"
    assert run_monitor(ns(replay=str(rec), json=False, log=str(log))) == 0
    out = capsys.readouterr().out
    assert "Replaying" in out and "3 reading(s)" in out and "recorded here for the test" in out
    assert "the reading with the most VRAM used" in out and "99 %" in out
    assert "above 92 %" in out and "Over the recording" in out
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["event"], r["kind"]) for r in logged] == [("gpu_alert", "vram"), ("gpu_alert", "vram")]


def test_replay_errors_are_one_line_and_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from crew.cli import main
    from crew.cli.monitor import run_monitor

    assert main(["monitor", "--replay", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.csv: cannot read the recording" in err and "nvidia-smi" in err
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00binary")
    assert main(["monitor", "--replay", str(bad)]) == 2
    assert "not a text file" in capsys.readouterr().err
    with pytest.raises(UsageError):
        run_monitor(ns(replay=str(DATA / "recorded_2x3090.csv"), prometheus=9100))


def test_a_replay_never_loads_nvml() -> None:
    import subprocess
    import sys

    code = ("import sys; from crew.cli import main; "
            f"rc = main(['monitor', '--replay', {str(DATA / 'recorded_2x3090.csv')!r}, '--json']); "
            "print('NVML LOADED' if 'pynvml' in sys.modules else 'no nvml', rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("no nvml 0")


def test_a_recording_of_live_readings_replays_to_the_same_figures(tmp_path: Path) -> None:
    from crew.monitor.sampler import GpuSampler
    from tests.monitor_fakes import three_gpus

    rec = tmp_path / "gpus.csv"
    nvml = three_gpus()
    with GpuSampler(provider=nvml, interval_s=3600, record_to=rec) as live:
        live.sample_once()  # with the sample on entry and the one on exit: three rounds
    text = rec.read_text(encoding="utf-8")
    assert text.count("timestamp") == 1 and text.count("NVIDIA GeForce RTX 3090") == 3
    back = parse_recording(text, str(rec))
    assert len(back.readings) == 3
    first = back.readings[0].reading.gpus
    assert [(g.index, g.used_bytes, g.total_bytes, g.util_pct, g.power_mw) for g in first] == [
        (g.index, g.used_bytes, g.total_bytes, g.util_pct, g.power_mw) for g in nvml_reading(nvml)]
    assert first[2].temp_c is None  # a failed query stays unknown through the file
    replayed = replay(back, Thresholds(), generating=False)
    assert list(replayed.peaks) == live.summary() and list(replayed.first_alerts) == live.alerts()


def nvml_reading(nvml):  # type: ignore[no-untyped-def]
    from crew.monitor.live import read_gpus

    return read_gpus(nvml).gpus


def test_monitor_record_appends_rounds_and_refuses_what_cannot_work(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from crew.cli.monitor import run_monitor
    from tests.monitor_fakes import three_gpus

    rec = tmp_path / "gpus.csv"
    for _ in range(2):
        assert run_monitor(ns(record=str(rec), once=True), provider=three_gpus()) == 0
    capsys.readouterr()
    assert len(parse_recording(rec.read_text(encoding="utf-8"), "r").readings) == 2
    assert run_monitor(ns(replay=str(rec))) == 0
    assert json.loads(capsys.readouterr().out)["peaks"][1]["samples"] == 2
    with pytest.raises(UsageError):
        run_monitor(ns(replay=str(rec), record=str(rec)))
    with pytest.raises(UsageError):
        run_monitor(ns(record=str(rec), prometheus=9100), provider=three_gpus())
    with pytest.raises(ConfigError) as err:
        run_monitor(ns(record=str(tmp_path), once=True), provider=three_gpus())  # a folder
    assert err.value.where == str(tmp_path)


def test_a_recording_that_cannot_be_written_stops_recording_not_sampling(tmp_path: Path) -> None:
    from crew.monitor.sampler import GpuSampler
    from tests.monitor_fakes import three_gpus

    with GpuSampler(provider=three_gpus(), interval_s=3600, record_to=tmp_path) as s:  # a folder
        s.sample_once()
    assert s.record_to is None and s.recording_note.startswith("GPU recording stopped:")
    assert s.note == "" and s.summary()[0].samples == 3
