"""A whole crew run over two "hosts" of a real local Ray cluster (two nodes on this machine), then the loss
of one of them mid-run.

The layout names the cluster (`cluster: <head>`) and `simulate: true`; the probe finds one card per node
(declared as Ray resources), the planner spreads the agents over both, the head's server starts here as
in any run and the other node's through its actor, reached by agents through a loopback relay. The crew
runs on `embedded-tiny` (plumbing, not quality, as tests/test_simulated_gpus.py). When `document` starts —
its agent planned on the other node — that node is removed (ray.cluster_utils: its raylet, the actor and
the server are killed): the run must fail over and complete, and say what moved where.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ray = pytest.importorskip("ray")

from crew.fleet import cluster  # noqa: E402
from crew.models.embedded import EMBEDDED_TINY_REF  # noqa: E402
from crew.units import LOCAL  # noqa: E402
from tests.conftest import ROOT, use_tiny_model  # noqa: E402
from tests.ray_cluster import FAST_NODE_DEATH, local_cluster  # noqa: E402


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "run.jsonl").read_text().splitlines() if line.strip()]


def _environ(pid: int) -> dict[str, str]:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in env if b"=" in e)


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from crew.config import load_project
    from crew.planner.build import plan_project
    from crew.run.workflow import run
    from crew.serving.launch import launch_specs

    with local_cluster(["GPU-fake-1", "GPU-fake-2"], env=FAST_NODE_DEATH) as (c, _):
        here = cluster.this_node()
        assert here == c.head_node.node_id  # removing the other node leaves this process's node alone
        work = tmp_path_factory.mktemp("fleet")
        (work / "agents.yaml").write_text((ROOT / "agents.yaml").read_text())
        use_tiny_model(work / "agents.yaml", llm=EMBEDDED_TINY_REF, fallbacks=[], num_ctx=4096)
        (work / "tasks.yaml").write_text((ROOT / "tasks.yaml").read_text().replace("max_fix_rounds: 2",
                                                                                   "max_fix_rounds: 1"))
        layout = {"backend": "llamacpp", "simulate": True, "base_port": 12700, "cluster": c.address}
        (work / "gpu_layout.yaml").write_text(yaml.safe_dump(layout))
        project = load_project(work)
        plan = plan_project(project)  # what the run plans too: the same probe, the same solver
        planned = {a: s for s in launch_specs(plan, project.layout) for a in s.agents}
        seen: dict[str, Any] = {"plan": plan, "planned": planned, "environ": {}, "lines": [], "lost": None}
        lock = threading.Lock()
        other = next(n for n in c.worker_nodes if n.node_id != here)

        def run_dir() -> Path:
            return next((work / "runs").iterdir())

        def say(text: str) -> None:
            with lock:
                seen["lines"].append(text)
                if "▶ specify" in text:
                    for r in _records(run_dir()):
                        if r["event"] == "server_ready":
                            seen["environ"][r["server"]] = _environ(r["pid"])
                elif "▶ document" in text and seen["lost"] is None:
                    seen["lost"] = len(_records(run_dir()))
                    c.remove_node(other, allow_graceful=False)

        result = run(project, task="Write add.py with a function `add(a, b)` that returns a + b.", say=say)
        seen["result"] = result
        seen["records"] = _records(result.run_dir)
        yield seen


def _remote(fleet_run: Any) -> str:
    """The server planned on the other node."""
    return next(s.server_id for s in fleet_run["planned"].values() if s.machine != LOCAL)


def test_the_plan_spans_both_nodes_and_each_server_runs_on_its_own(fleet_run: Any) -> None:
    plan = fleet_run["plan"]
    assert plan.source == "cluster" and plan.simulated
    hosts = {s.machine for s in fleet_run["planned"].values()}
    assert len(hosts) == 2 and LOCAL in hosts  # agents on this machine's card and on the other node's
    assert fleet_run["planned"]["documentation"].machine != LOCAL  # the agent whose task loses its node
    ready = {r["server"]: r for r in fleet_run["records"] if r["event"] == "server_ready"}
    remote = _remote(fleet_run)
    assert ready[remote]["host"] == fleet_run["planned"]["documentation"].machine
    env = fleet_run["environ"]
    assert env["gpu0"]["CUDA_VISIBLE_DEVICES"] == "GPU-fake-1"  # started here, pinned to the head's card
    assert env[remote]["CUDA_VISIBLE_DEVICES"] == "GPU-fake-2"  # started by its actor, pinned to the node's
    residency = {r["server"]: r for r in fleet_run["records"] if r["event"] == "residency"}
    assert residency[remote]["simulated"] and residency[remote]["reported_bytes"] > 0  # read on its node
    assert any(f"ready on {ready[remote]['host']}, relayed to" in ln for ln in fleet_run["lines"])


def test_each_agents_requests_reach_the_server_on_its_planned_node(fleet_run: Any) -> None:
    records = fleet_run["records"]
    ready = {r["server"]: r for r in records if r["event"] == "server_ready"}
    url = {sid: f"http://127.0.0.1:{r['port']}/v1" for sid, r in ready.items()}
    calls = [(i, r) for i, r in enumerate(records) if r["event"] == "llm_call"]
    assert {r["agent"] for _, r in calls} == set(fleet_run["planned"])
    for i, r in calls:  # until the node was lost, request by request
        if i < fleet_run["lost"]:
            assert r["base_url"] == url[fleet_run["planned"][r["agent"]].server_id], r
    # and from the servers' side: each answered exactly the requests the agents logged for it, but for one
    # the node's loss cut short (it reached the server, never the agent, and was retried elsewhere)
    moves = [r for r in records if r["event"] == "serving_fault" and r.get("action") == "failover"]
    logs = {"gpu0": fleet_run["result"].run_dir / "servers" / "gpu0.log", _remote(fleet_run):
            Path(ready[_remote(fleet_run)]["node_log"])}
    for sid, log in logs.items():
        answered = log.read_text(errors="replace").count("POST /v1/chat/completions")
        logged = sum(r["base_url"] == url[sid] for _, r in calls)
        cut = sum(m["previous"] == sid for m in moves)
        assert 1 <= logged <= answered <= logged + cut, (sid, answered, logged, cut)


def test_the_lost_node_fails_over_and_the_run_completes(fleet_run: Any) -> None:
    records, remote = fleet_run["records"], _remote(fleet_run)
    moves = [r for r in records if r["event"] == "serving_fault" and r.get("action") == "failover"]
    assert moves and {m["previous"] for m in moves} == {remote}
    assert {m["agent"] for m in moves} <= {a for a, s in fleet_run["planned"].items() if s.server_id == remote}
    assert all(m["server"] == "gpu0" for m in moves)  # the live server already hosting their model, here
    ready = {r["server"]: r for r in records if r["event"] == "server_ready"}
    after = [r for r in records[fleet_run["lost"]:] if r["event"] == "llm_call" and r["agent"] == "documentation"]
    assert after and all(r["base_url"] == f"http://127.0.0.1:{ready['gpu0']['port']}/v1" for r in after)
    report = fleet_run["result"].report_path.read_text()
    assert f"documentation moved from {remote} to gpu0" in report
    assert any("failover" in ln and remote in ln for ln in fleet_run["lines"])  # printed as it happened
    assert (fleet_run["result"].run_dir / "code" / "README.md").exists()  # the moved agent's work landed
    assert [r for r in records if r["event"] == "report"]
