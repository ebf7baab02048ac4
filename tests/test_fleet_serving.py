"""The run's serving layer with servers on other machines, without a cluster: the supervisor hands remote
specs to its launcher (crew/serving/remote.py's protocols; here a fake, no Ray), and a plan with remote
hosts runs only when the layout names a cluster."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from crew.config import load_project
from crew.errors import ServingError
from crew.models.embedded import EMBEDDED_TINY_REF
from crew.serving.bind import prepare_specs
from crew.serving.llamacpp_residency import ServerResidency
from crew.serving.process import Supervisor
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec
from crew.units import LOCAL
from tests.conftest import ROOT


@dataclass
class FakeRemote:
    spec: LaunchSpec
    residency: ServerResidency | None = None
    up: bool = True
    stopped: bool = False
    asked_to_ensure: int = 0

    @property
    def pid(self) -> int:
        return 4242

    @property
    def log_path(self) -> Path:
        return Path("/node/rig-gpu0.log")

    def wait_ready(self, timeout_s: float) -> float:
        self.residency = ServerResidency(self.spec.server_id, 1, 1, 0, 1, True)
        return 1.5

    def alive(self) -> bool:
        return self.up

    def answers(self) -> bool:
        return self.up

    def ensure(self) -> bool:
        self.asked_to_ensure += 1
        return self.up

    def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeLauncher:
    launched: list[FakeRemote] = field(default_factory=list)

    def launch(self, spec: LaunchSpec) -> FakeRemote:
        self.launched.append(FakeRemote(replace(spec, port=40001)))  # the relay's port here
        return self.launched[-1]


def _remote_spec() -> LaunchSpec:
    spec = llamacpp_spec("rig-gpu0", (ServedModel("m", "/models/m.gguf", 512),), 11500)
    return replace(spec, machine="rig", gpu_indices=(0,))


def test_the_supervisor_starts_remote_specs_through_its_launcher(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    sup = Supervisor(tmp_path, remote=launcher)
    ready: list[tuple[str, float]] = []
    sup.start_all([_remote_spec()], on_ready=lambda server, took: ready.append((server.spec.base_url, took)))
    assert ready == [("http://127.0.0.1:40001", 1.5)]  # agents are bound to the relay here
    remote = launcher.launched[0]
    assert sup.ensure_alive("rig-gpu0") and remote.asked_to_ensure == 1
    remote.up = False  # its node is gone: the router fails over, never restarts it here
    assert not sup.ensure_alive("rig-gpu0") and sup.restarts == {}
    sup.stop_all()
    assert remote.stopped


def test_without_a_launcher_a_remote_spec_names_the_missing_cluster(tmp_path: Path) -> None:
    with pytest.raises(ServingError) as info:
        Supervisor(tmp_path).start_all([_remote_spec()])
    assert info.value.where == "gpu_layout.yaml: cluster" and "rig" in info.value.what


def _fleet_project(tmp_path: Path, cluster: str | None):  # type: ignore[no-untyped-def]
    from crew.config.types import DeclaredGpu

    project = load_project(ROOT)
    agents = {n: replace(a, llm=EMBEDDED_TINY_REF, fallbacks=(), num_ctx=4096) for n, a in project.agents.items()}
    layout = replace(project.layout, backend="llamacpp", simulate=True, cluster=cluster, base_port=12900,
                     gpus=(DeclaredGpu("RTX 3060", 12, uuid="GPU-here"),
                           DeclaredGpu("RTX 3060", 12, uuid="GPU-rig", host="rig")))
    return replace(project, agents=agents, layout=layout)


def test_remote_hosts_run_only_on_a_named_cluster(tmp_path: Path) -> None:
    from crew.planner.build import plan_project

    project = _fleet_project(tmp_path, None)
    plan = plan_project(project)
    with pytest.raises(ServingError, match="other hosts \\(rig\\)") as info:
        prepare_specs(plan, project)
    assert "cluster: auto" in (info.value.fix or "")
    specs = prepare_specs(plan, _fleet_project(tmp_path, "auto"))  # checks; connects to nothing
    remote = [s for s in specs if s.machine != LOCAL]
    assert [s.server_id for s in remote] == ["rig-gpu0"] and remote[0].port == 12900  # its node picks the port
    assert remote[0].planned_pinning == "GPU-rig"


def test_plan_gpus_up_refuses_servers_on_other_nodes(tmp_path: Path) -> None:
    """`up` keeps servers after it exits; an actor does not outlive the process that made it."""
    import json
    import subprocess
    import sys

    import yaml

    declared = tmp_path / "declared"
    declared.mkdir()
    agents = yaml.safe_load((ROOT / "agents.yaml").read_text())
    for a in agents.values():
        a.update(llm=EMBEDDED_TINY_REF, fallbacks=[], num_ctx=4096)
    (declared / "agents.yaml").write_text(yaml.safe_dump(agents))
    (declared / "gpu_layout.yaml").write_text(yaml.safe_dump({"backend": "llamacpp", "simulate": True, "gpus": [
        {"name": "RTX 3060", "memory_gib": 12, "uuid": "GPU-here"},
        {"name": "RTX 3060", "memory_gib": 12, "uuid": "GPU-rig", "host": "rig"}]}))
    cli = [sys.executable, "-c", "import sys; from crew.cli import main; sys.exit(main())"]
    saved = tmp_path / "plan.json"
    made = subprocess.run([*cli, "--layout", str(declared / "gpu_layout.yaml"), "--agents",
                           str(declared / "agents.yaml"), "--save", str(saved)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert {a["host"] for a in json.loads(saved.read_text())["agents"]} == {LOCAL, "rig"}
    project = tmp_path / "fleet"
    project.mkdir()
    for name in ("agents.yaml", "tasks.yaml"):
        (project / name).write_text((declared / name if name == "agents.yaml" else ROOT / name).read_text())
    (project / "gpu_layout.yaml").write_text("backend: llamacpp\nsimulate: true\ncluster: auto\n")
    proc = subprocess.run([*cli, "up", "--project", str(project), "--plan", str(saved)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr + proc.stdout
    assert "gpu_layout.yaml: cluster: the plan has servers on other nodes (rig)" in lines[0]
    assert not (project / ".localcrew" / "servers.json").exists()  # nothing started, nothing recorded


def test_a_session_binds_agents_on_other_nodes_to_their_relays(tmp_path: Path) -> None:
    """Every agent planned on `rig` (the only card declared): the session starts nothing here, hands the
    servers to the launcher, checks the residency the node reported and binds the agents to the relay."""
    from crew.config.types import DeclaredGpu
    from crew.journal.log import RunLog
    from crew.planner.build import plan_project
    from crew.serving.bind import bind_agents
    from crew.serving.session import ServerSession

    project = _fleet_project(tmp_path, None)
    project = replace(project, root=tmp_path, layout=replace(project.layout, gpus=(
        DeclaredGpu("RTX 3060", 12, uuid="GPU-rig", host="rig"),), allow_split=False))
    plan = plan_project(project)
    assert {a.host for a in plan.agents} == {"rig"}
    launcher, lines, log = FakeLauncher(), [], RunLog(tmp_path / "run.jsonl")
    project = replace(project, layout=replace(project.layout, cluster="auto"))
    session = ServerSession(project, plan, state_dir=tmp_path / "servers", keep=False, say=lines.append,
                            log=log, launcher=launcher)
    with session.running():
        assert [s.base_url for s in session.specs] == ["http://127.0.0.1:40001"]
        bound = bind_agents(plan, session.specs, project)
    assert {str(llm.base_url) for llm in bound.llms.values()} == {"http://127.0.0.1:40001/v1"}
    assert {w.device for w in bound.where.values()} == {"gpu 0 (simulated) on rig"}
    ready = log.of("server_ready")[0]
    assert (ready["server"], ready["host"], ready["node_log"], ready["pid"]) == ("rig-gpu0", "rig",
                                                                              "/node/rig-gpu0.log", 4242)
    assert log.of("residency")[0]["server"] == "rig-gpu0"  # the node's figures, recorded as a local one's
    assert any("ready on rig, relayed to http://127.0.0.1:40001" in ln for ln in lines)
    assert launcher.launched[0].stopped and not (tmp_path / "servers").exists()  # nothing ran here
