"""A llama.cpp server that crashes is one line, a report and exit 2 — not a traceback, and not a second
server of the same build on the same device (issue 23).

The server is tests/fake_crash_server.py (LOCALCREW_SERVER_PYTHON points at it): it answers its health check
like llama-cpp-python's server and dies on a fault signal at its first completion, as a build that cannot
run on the CPU does. The crew, the plan, the supervisor and the router are the real ones.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crew.models.embedded import cache_dir
from tests.conftest import ROOT, use_tiny_model

FAKE = ROOT / "tests" / "fake_crash_server.py"


def _fake_python(where: Path) -> Path:
    """An executable that runs the fake server with whatever argv a server spec gives its interpreter."""
    exe = where / "fake-python"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def _run(tmp_path: Path, project: Path, sig: str = "SIGSEGV") -> tuple[subprocess.CompletedProcess[str], Path]:
    starts = tmp_path / "starts.jsonl"
    env = {**os.environ, "CREWAI_STORAGE_DIR": str(tmp_path / ".crewai"), "LOCALCREW_CACHE_DIR": str(cache_dir()),
           "LOCALCREW_SERVER_PYTHON": str(_fake_python(tmp_path)), "FAKE_CRASH_STARTS": str(starts),
           "FAKE_CRASH_SIGNAL": sig}
    env.pop("LOCALCREW_TASK", None)
    proc = subprocess.run([sys.executable, "-c", "import sys; from crew.main import localcrew; sys.exit(localcrew())",
                           "run", "--project", str(project), "--task",
                           "Write `is_even(n)` returning True when n is even. Example: is_even(2) == True"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return proc, starts


@pytest.mark.slow
def test_a_server_that_segfaults_ends_the_run_in_one_line_with_a_report_and_exit_2(
        tmp_path: Path, project_dir: Path) -> None:
    use_tiny_model(project_dir / "agents.yaml", llm="embedded-tiny", fallbacks=[], num_ctx=4096)
    proc, starts = _run(tmp_path, project_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, proc.stderr
    line = errors[0]
    assert "the llama.cpp server for `embedded-tiny` crashed (SIGSEGV" in line and "twice" in line, line
    assert "bash scripts/setup.sh doctor" in line
    # one server, started, then restarted once: never a CPU fallback of the same build on the same CPU
    started = [json.loads(ln) for ln in starts.read_text().splitlines()]
    assert len(started) == 2, started
    run_dir = next((project_dir / "runs").iterdir())
    report = (run_dir / "report.md").read_text()
    assert "## Run stopped" in report and "crashed (SIGSEGV" in report
    events = [json.loads(ln) for ln in (run_dir / "run.jsonl").read_text().splitlines()]
    faults = [e for e in events if e["event"] == "serving_fault"]
    assert [f["action"] for f in faults] == ["restarted", "crashed"], faults
    assert faults[-1]["signal"] == "SIGSEGV" and faults[-1]["times"] == 2
    assert not any(e["event"] == "server_ready" and e["server"] == "cpu-fallback" for e in events)
    assert any(e["event"] == "run_stopped" for e in events)


@pytest.mark.slow
def test_a_killed_server_may_fail_over_to_the_cpu_but_a_crashed_one_may_not(tmp_path: Path, project_dir: Path) -> None:
    """SIGKILL (the OOM killer, a user) is not the build's fault: the router may start the CPU fallback. Here
    the fallback is the same fake build, so it is started (and is then killed too) — the point is that the
    router tried it, where after SIGSEGV it did not."""
    use_tiny_model(project_dir / "agents.yaml", llm="embedded-tiny", fallbacks=[], num_ctx=4096)
    proc, _ = _run(tmp_path, project_dir, sig="SIGKILL")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and "was killed (SIGKILL)" in errors[0], proc.stderr
    run_dir = next((project_dir / "runs").iterdir())
    events = [json.loads(ln) for ln in (run_dir / "run.jsonl").read_text().splitlines()]
    assert any(e["event"] == "server_ready" and e["server"] == "cpu-fallback" for e in events)
    assert "## Run stopped" in (run_dir / "report.md").read_text()

