"""Simulated 2× RTX 3060 with real llama.cpp servers: pinning, routing, restart and failover, in one real run.

`simulate: true` gives each declared GPU its own CPU server with exactly the planned CUDA_VISIBLE_DEVICES
and port. A real crew runs on `embedded-tiny` (plumbing, not quality: docs/testing.md); a probe kills the
manager's server with SIGKILL when the first task starts (→ restarted once) and again when `document` starts
(→ its agents fail over to the other server). The run must complete and say so in its report.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from crew.models.embedded import EMBEDDED_TINY_REF
from tests.conftest import ROOT, use_tiny_model

pytestmark = pytest.mark.slow

LAYOUT = {
    "backend": "llamacpp",
    "simulate": True,
    "reserve_mib": 512,
    "base_port": 12600,
    "gpus": [
        {"name": "RTX 3060", "memory_gib": 12, "uuid": "GPU-11111111-aaaa"},
        {"name": "RTX 3060", "memory_gib": 12, "uuid": "GPU-22222222-bbbb"},
    ],
}


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "run.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from crew.config import load_project
    from crew.run.workflow import run

    work = tmp_path_factory.mktemp("sim")
    (work / "agents.yaml").write_text((ROOT / "agents.yaml").read_text())
    use_tiny_model(work / "agents.yaml", llm=EMBEDDED_TINY_REF, fallbacks=[], num_ctx=4096)
    tasks = (ROOT / "tasks.yaml").read_text().replace("max_fix_rounds: 2", "max_fix_rounds: 1")
    (work / "tasks.yaml").write_text(tasks)
    (work / "gpu_layout.yaml").write_text(yaml.safe_dump(LAYOUT))
    seen: dict[str, Any] = {"environ": {}, "kills": [], "lines": []}
    lock = threading.Lock()

    def run_dir() -> Path:
        return next((work / "runs").iterdir())

    def server_pids() -> dict[str, int]:
        pids = {}
        for rec in _records(run_dir()):
            if rec["event"] == "server_ready" or (rec["event"] == "serving_fault" and "pid" in rec):
                pids[rec["server"]] = rec["pid"]
        return pids

    def manager_server() -> str:
        plan = next(r for r in _records(run_dir()) if r["event"] == "plan")
        return f"gpu{plan['agents']['manager']['gpus'][0]}"

    def kill(server: str) -> None:
        pid = server_pids()[server]
        os.kill(pid, signal.SIGKILL)
        seen["kills"].append((server, pid))

    def say(text: str) -> None:
        with lock:
            seen["lines"].append(text)
            if "▶ specify" in text:
                for sid, pid in server_pids().items():
                    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    seen["environ"][sid] = dict(e.decode().split("=", 1) for e in env if b"=" in e)
                kill(manager_server())
            elif "▶ document" in text:
                kill(manager_server())

    result = run(load_project(work), task="Write add.py with a function `add(a, b)` that returns a + b.", say=say)
    seen["result"] = result
    seen["records"] = _records(result.run_dir)
    return seen


def test_one_pinned_server_per_simulated_gpu(faulty_run: dict[str, Any]) -> None:
    env = faulty_run["environ"]
    assert set(env) == {"gpu0", "gpu1"}
    assert env["gpu0"]["CUDA_VISIBLE_DEVICES"] == "GPU-11111111-aaaa"
    assert env["gpu1"]["CUDA_VISIBLE_DEVICES"] == "GPU-22222222-bbbb"
    assert all(e["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" and e["LOCALCREW_SIMULATED"] == "1" for e in env.values())
    ready = [r for r in faulty_run["records"] if r["event"] == "server_ready"]
    assert len({r["port"] for r in ready}) == 2
    assert any("(simulated)" in line for line in faulty_run["lines"])
    plan = next(r for r in faulty_run["records"] if r["event"] == "plan")
    assert {a["model"] for a in plan["agents"].values()} == {EMBEDDED_TINY_REF}


def test_each_agent_is_served_by_its_own_server_request_by_request(faulty_run: dict[str, Any]) -> None:
    records = faulty_run["records"]
    port = {r["server"]: r["port"] for r in records if r["event"] == "server_ready"}
    plan = next(r for r in records if r["event"] == "plan")
    moved = next(i for i, r in enumerate(records) if r.get("action") == "failover")
    calls = [(i, r) for i, r in enumerate(records) if r["event"] == "llm_call"]
    assert {r["agent"] for _, r in calls} == set(plan["agents"])
    for i, r in calls:  # until the failover, every request went to the server of the agent's planned GPU
        gpu = plan["agents"][r["agent"]]["gpus"][0]
        planned = f"http://127.0.0.1:{port[f'gpu{gpu}']}/v1"
        if i < moved:
            assert r["base_url"] == planned, r
    # and from the servers' side: each one answered exactly the requests the agents logged for it
    servers = faulty_run["result"].run_dir / "servers"
    for sid in ("gpu0", "gpu1"):
        answered = (servers / f"{sid}.log").read_text(errors="replace").count("POST /v1/chat/completions")
        logged = sum(r["base_url"] == f"http://127.0.0.1:{port[sid]}/v1" for _, r in calls)
        assert answered == logged >= 1, (sid, answered, logged)


def test_restart_then_failover_and_the_run_completes(faulty_run: dict[str, Any]) -> None:
    faults = [r for r in faulty_run["records"] if r["event"] == "serving_fault"]
    actions = [f["action"] for f in faults]
    assert "restarted" in actions and "failover" in actions
    assert actions.index("restarted") < actions.index("failover")
    assert len(faulty_run["kills"]) == 2, (faulty_run["kills"], [(f["action"], f.get("pid")) for f in faults])
    report = faulty_run["result"].report_path.read_text()
    assert "failover" in report and "restarted" in report
    assert (faulty_run["result"].run_dir / "code" / "README.md").exists()  # work after the faults landed
    assert [r for r in faulty_run["records"] if r["event"] == "report"]
