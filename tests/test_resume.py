"""Nothing lost: a real run killed with SIGKILL mid-way resumes from its last finished task."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _events(run: Path) -> list[dict[str, object]]:
    path = run / "run.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a torn last line from the killed process
            out.append(json.loads(line))
    return out


def test_kill_9_then_resume(tiny_project_dir: Path) -> None:
    """On `embedded-tiny` (the CPU model of every agent): what is checked is the log and the resume."""
    project_dir = tiny_project_dir
    layout = yaml.safe_load((project_dir / "gpu_layout.yaml").read_text())
    layout["base_port"] = 12900
    (project_dir / "gpu_layout.yaml").write_text(yaml.safe_dump(layout))
    cmd = [sys.executable, "-m", "crew"]
    proc = subprocess.Popen([*cmd, "run", "--project", str(project_dir), "--task", "Write add.py with `add(a, b)`."],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    run = None
    while time.monotonic() < deadline:
        runs = list((project_dir / "runs").glob("*")) if (project_dir / "runs").exists() else []
        if runs and any(e.get("event") == "task_done" and e.get("task") == "implement" for e in _events(runs[0])):
            run = runs[0]
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    assert run is not None
    server_pids = [int(e["pid"]) for e in _events(run) if e.get("event") == "server_ready"]  # type: ignore[call-overload]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(1.0)
    for pid in server_pids:  # PR_SET_PDEATHSIG: the servers died with their parent
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"
    code_before = {p.name: p.read_text() for p in (run / "code").glob("*.py")}
    assert code_before, "the developer's file was written before the kill"

    done = subprocess.run([*cmd, "resume", str(run), "--project", str(project_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "at task 'write_tests'" in done.stdout  # right after the last finished task
    events = _events(run)
    names = [e["event"] for e in events]
    assert "resume" in names and "report" in names
    finished = [e["task"] for e in events if e["event"] == "task_done"]
    assert finished.count("specify") == 1 and finished.count("implement") == 1  # not redone
    assert (run / "report.md").exists()
    # The report covers the whole run: the developer's calls before the kill (implement) are counted too.
    calls = Counter(str(e["agent"]) for e in events if e["event"] == "llm_call")
    rows = {cells[0]: cells for line in (run / "report.md").read_text().splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip().strip("|").split("|")]] if len(cells) == 8}
    assert calls["developer"] > 0 and int(rows["developer"][6]) == calls["developer"]
    assert int(rows["developer"][4]) > 0  # its prompt tokens, from the llm_call records of the killed part
