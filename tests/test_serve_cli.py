"""`plan-gpus up | status | down` with a real llama.cpp server, and reuse by a second `up`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from crew.cli import main
from tests.conftest import use_tiny_model

pytestmark = pytest.mark.slow


def _gone(pid: int) -> bool:
    for _ in range(100):
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.1)
    return False


def test_up_status_reuse_down(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One CPU server for every agent, on `embedded-tiny`: the lifecycle is checked, not the model."""
    layout = yaml.safe_load((project_dir / "gpu_layout.yaml").read_text())
    layout["base_port"] = 12700
    (project_dir / "gpu_layout.yaml").write_text(yaml.safe_dump(layout))
    use_tiny_model(project_dir / "agents.yaml", num_ctx=2048)
    root = ["--project", str(project_dir)]
    try:
        assert main(["up", *root]) == 0
        assert "ready on http://127.0.0.1:" in capsys.readouterr().out
        assert main(["status", "--json", *root]) == 0
        (srv,) = json.loads(capsys.readouterr().out)["servers"]
        assert srv["server_id"] == "cpu" and srv["alive"] and srv["healthy"] and srv["reported_bytes"] > 0
        assert main(["up", *root]) == 0  # same plan: reused, nothing new started
        assert "reused" in capsys.readouterr().out
        assert main(["status", "--json", *root]) == 0
        assert json.loads(capsys.readouterr().out)["servers"][0]["pid"] == srv["pid"]
    finally:
        assert main(["down", *root]) == 0
    assert "stopped" in capsys.readouterr().out
    assert _gone(srv["pid"])
    assert main(["status", *root]) == 0 and "no servers recorded" in capsys.readouterr().out


def test_two_ups_at_once_in_one_folder_each_start_and_record_their_own_server(project_dir: Path) -> None:
    """Two `plan-gpus up` started together in one project folder: two servers on two ports, both recorded
    with their own pid, both healthy and answering from their own process; `down` stops both. On
    `embedded-tiny`: processes and records are checked, not the model."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    layout = yaml.safe_load((project_dir / "gpu_layout.yaml").read_text())
    layout["base_port"] = 12750
    (project_dir / "gpu_layout.yaml").write_text(yaml.safe_dump(layout))
    use_tiny_model(project_dir / "agents.yaml", num_ctx=2048)
    cli = [sys.executable, "-m", "crew.cli"]
    root = ["--project", str(project_dir)]
    pids: list[int] = []
    try:
        ups = [subprocess.Popen([*cli, "up", *root], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in ups]
        assert [p.returncode for p in ups] == [0, 0], outs
        status = subprocess.run([*cli, "status", "--json", *root], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        servers = json.loads(status.stdout)["servers"]
        pids = [s["pid"] for s in servers]
        assert len(servers) == 2, servers
        assert len({s["port"] for s in servers}) == 2 and len(set(pids)) == 2
        assert all(s["alive"] and s["healthy"] for s in servers)
    finally:
        down = subprocess.run([*cli, "down", *root], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert down.stdout.count("stopped") == 2, down.stdout
    assert all(_gone(pid) for pid in pids)
