"""A whole crew run over two "hosts" of a real local Ray cluster (two nodes on this machine), then the loss
of one of them mid-run.

The layout names the cluster (`cluster: <head>`) and `simulate: true`; the probe finds one card per node
(declared as Ray resources), the planner spreads the agents over both, the head's server starts here as
in any run and the other node's through its actor, reached by agents through a loopback relay. The crew
runs on two copies of `embedded-tiny` (plumbing, not quality, as tests/test_simulated_gpus.py): `here` for
the manager and the developer, `there` for the tester and documentation, so that no live server hosts the
lost node's model. When `document` starts — its agent planned on the other node — that node is removed
(ray.cluster_utils: its raylet, the actor and the server are killed): the run must fail over to another
node's GPU with room (the head's), complete, and say what moved where.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ray = pytest.importorskip("ray")

from crew.fleet import cluster  # noqa: E402
from crew.models.embedded import tiny_model_path  # noqa: E402
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
        for copy in ("here.gguf", "there.gguf"):
            shutil.copyfile(tiny_model_path(), work / copy)
        (work / "agents.yaml").write_text((ROOT / "agents.yaml").read_text())
        use_tiny_model(work / "agents.yaml", fallbacks=[], num_ctx=4096)
        agents = yaml.safe_load((work / "agents.yaml").read_text())
        for name, agent in agents.items():
            agent["llm"] = str(work / ("here.gguf" if name in ("manager", "developer") else "there.gguf"))
        (work / "agents.yaml").write_text(yaml.safe_dump(agents))
        # The README's request reads implement's answer, so it is sent as soon as implement is done
        # (crew/run/overlap.py), before the node is lost at document; reading the tests too, it waits for its
        # task, and its agent is the one whose node goes.
        tasks_text = (ROOT / "tasks.yaml").read_text().replace("max_fix_rounds: 2", "max_fix_rounds: 1")
        assert tasks_text.count("  context: [implement]\n") == 1
        (work / "tasks.yaml").write_text(tasks_text.replace("  context: [implement]\n",
                                                            "  context: [implement, write_tests]\n"))
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
    servers = fleet_run["result"].run_dir / "servers"
    logs = {sid: servers / f"{sid}.log" for sid in ready if sid != _remote(fleet_run)}
    logs[_remote(fleet_run)] = Path(ready[_remote(fleet_run)]["node_log"])
    assert set(logs) == {"gpu0", _remote(fleet_run), MOVED}
    for sid, log in logs.items():
        answered = log.read_text(errors="replace").count("POST /v1/chat/completions")
        logged = sum(r["base_url"] == url[sid] for _, r in calls)
        cut = sum(m["previous"] == sid for m in moves)
        assert 1 <= logged <= answered <= logged + cut, (sid, answered, logged, cut)


# Where documentation goes when its node is lost: no live server hosts `there`, so its own model on another
# node's GPU with room — the head's card, a new server started here.
MOVED = "gpu0-failover-documentation"


def test_the_lost_node_fails_over_to_another_nodes_gpu_and_the_run_completes(fleet_run: Any) -> None:
    records, remote = fleet_run["records"], _remote(fleet_run)
    moves = [r for r in records if r["event"] == "serving_fault" and r.get("action") == "failover"]
    assert [(m["agent"], m["previous"], m["server"]) for m in moves] == [("documentation", remote, MOVED)]
    ready = {r["server"]: r for r in records if r["event"] == "server_ready"}
    assert fleet_run["environ"]["gpu0"]["CUDA_VISIBLE_DEVICES"] == "GPU-fake-1"
    residency = {r["server"] for r in records if r["event"] == "residency"}
    assert MOVED in residency  # checked like every server
    after = [r for r in records[fleet_run["lost"]:] if r["event"] == "llm_call" and r["agent"] == "documentation"]
    assert after and all(r["base_url"] == f"http://127.0.0.1:{ready[MOVED]['port']}/v1" for r in after)
    report = fleet_run["result"].report_path.read_text()
    assert f"documentation moved from {remote} to {MOVED} (there)" in report
    assert any("starting documentation's model there on GPU 0, which has room" in ln for ln in fleet_run["lines"])
    assert any("failover" in ln and remote in ln for ln in fleet_run["lines"])  # printed as it happened
    assert (fleet_run["result"].run_dir / "code" / "README.md").exists()  # the moved agent's work landed
    assert [r for r in records if r["event"] == "report"]
