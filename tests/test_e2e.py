"""End to end, for real: `crewai run` in a copy of the project, on the embedded model, on this CPU."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crew.models.embedded import cache_dir
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped)")


def _counts(text: str) -> dict[str, int]:
    """pytest's own closing line, e.g. '==== 1 failed, 2 passed in 0.12s ===='."""
    # pytest's own line only: a model-written assertion message ("Test case 5 failed") is not a count.
    lines = [ln for ln in text.splitlines()
             if re.match(r"^=*\s*(\d+ (passed|failed|errors?|skipped)\b|no tests ran)", ln.strip())]
    found = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for n, word in COUNTS.findall(lines[-1] if lines else ""):
        found["errors" if word.startswith("error") else word] = int(n)
    return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc, work, _ = _run_in_copy(tmp_path_factory)
    return proc, work


_ENV: dict[str, str] = {}


Finished = tuple[subprocess.CompletedProcess[str], Path, dict[str, str]]


def _run_in_copy(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    work = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "uv.lock", "README.md", "agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
        shutil.copy(ROOT / name, work / name)
    env = {**os.environ, "UV_NO_SYNC": "1", "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv"),
           "CREWAI_STORAGE_DIR": str(work / ".crewai"), "HOME": str(work / "home"),
           "LOCALCREW_CACHE_DIR": str(cache_dir()),  # the assembled embedded model, not a new copy per HOME
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("LOCALCREW_TASK", None)
    crewai = shutil.which("crewai", path=env["PATH"])
    assert crewai, "crewai CLI not installed in the environment"
    proc = subprocess.run([crewai, "run"], cwd=work, env=env, capture_output=True, text=True, timeout=1500,
                          stdin=subprocess.DEVNULL)
    _ENV.update(env, CRAWAI_BIN=crewai)
    return proc, work, env


def test_crewai_run_completes(finished_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, work = finished_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "An error occurred" not in proc.stderr, proc.stderr[-3000:]
    runs = sorted((work / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / "report.md").is_file() and (run / "run.jsonl").is_file()
    files = [p.name for p in (run / "code").iterdir() if p.is_file()]
    assert files, "the crew wrote no file into its workspace"
    assert "README.md" in files  # the documentation agent always leaves a README
    report = (run / "report.md").read_text()
    assert "## GPU memory: planned vs measured" in report and "driver is not installed" in report


def test_report_matches_what_pytest_printed(finished_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, work = finished_run
    run = next((work / "runs").iterdir())
    report = (run / "report.md").read_text()
    rounds = sorted(run.glob("pytest-round-*.txt"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert rounds, "no real test run happened"
    rows = re.findall(r"^\| (\d+) \| [^|]* \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", report, re.M)
    assert len(rows) == len(rounds)
    for (n, _collected, passed, failed, errors, skipped), out in zip(rows, rounds, strict=True):
        printed = _counts(out.read_text())
        assert (int(passed), int(failed), int(skipped)) == (printed["passed"], printed["failed"],
                                                             printed["skipped"]), f"round {n}: {printed}"
        assert int(errors) >= printed["errors"]
    final = _counts(rounds[-1].read_text())
    if "**Verdict:** PASS" in report:
        assert final["failed"] == final["errors"] == 0 and final["passed"] > 0
    if final["failed"] or final["errors"] or not final["passed"]:
        assert "**Verdict:** FAIL" in report


def test_no_server_left_running(finished_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, work = finished_run
    left = []
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit():
            try:
                if str(work) in os.readlink(proc_dir / "cwd"):
                    left.append(proc_dir.name)
            except OSError:
                continue
    assert not left, f"processes still running in the project copy: {left}"


def test_log_tasks_outputs_and_replay_work_on_the_run(
        finished_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, work = finished_run
    env = dict(_ENV)
    crewai = env.pop("CRAWAI_BIN")
    listing = subprocess.run([crewai, "log-tasks-outputs"], cwd=work, env=env, capture_output=True, text=True,
                             timeout=300, stdin=subprocess.DEVNULL)
    ids = re.findall(r"^Task (\d+): (\S+)$", listing.stdout, re.M)
    assert [n for n, _ in ids] == ["1", "2", "3", "4", "5", "6"], listing.stdout[-2000:] + listing.stderr[-2000:]
    run = next((work / "runs").iterdir())
    before = (run / "report.md").stat().st_mtime
    document_id = ids[4][1]
    replay = subprocess.run([crewai, "replay", "-t", document_id], cwd=work, env=env, capture_output=True,
                            text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert replay.returncode == 0 and "An error occurred" not in replay.stderr, replay.stderr[-3000:]
    events = [json.loads(line)["event"] for line in (run / "run.jsonl").read_text().splitlines()]
    assert "replay" in events and events.count("report") == 2
    assert (run / "report.md").stat().st_mtime > before
    assert "replaying" in replay.stdout
