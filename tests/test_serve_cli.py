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
