"""Config loading: the shipped files load, and every mistake is one line naming file, key and fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crew.config import AGENT_NAMES, TASK_NAMES, load_project
from crew.errors import ConfigError
from tests.conftest import ROOT


def test_shipped_files_load() -> None:
    project = load_project(ROOT)
    assert tuple(project.agents) == AGENT_NAMES
    assert tuple(project.tasks.tasks) == TASK_NAMES
    assert project.agents["developer"].candidates[0] == "ollama/qwen2.5-coder:14b"
    assert project.agents["developer"].num_ctx == 16384
    assert project.tasks.workflow.max_fix_rounds == 2
    assert project.tasks.workflow.temperature == 0.0  # first answers greedy, as one shot is measured
    assert project.tasks.tasks["report"].max_tokens == 120 and project.tasks.tasks["implement"].max_tokens is None
    assert project.tasks.tasks["specify"].stop == ("```",) and project.tasks.tasks["implement"].stop == ()
    assert "is_palindrome" in project.tasks.inputs["project_task"]
    assert project.layout.backend == "auto" and project.layout.gpus == "detect"
    assert project.layout.reserve_bytes == 512 * 1024**2


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


CASES = [
    ("agents.yaml", lambda d: d.pop("tester"), "agents.yaml: tester: missing agent"),
    ("agents.yaml", lambda d: d.update(intern={"role": "x"}), "agents.yaml: intern: unknown agent"),
    ("agents.yaml", lambda d: d["developer"].update(temperature=1), "agents.yaml: developer.temperature: unknown key"),
    ("agents.yaml", lambda d: d["developer"].pop("llm"), "agents.yaml: developer.llm: missing required key"),
    ("agents.yaml", lambda d: d["developer"].update(num_ctx="big"), "agents.yaml: developer.num_ctx: expected int"),
    ("agents.yaml", lambda d: d["developer"].update(num_ctx=True), "agents.yaml: developer.num_ctx: expected int"),
    ("agents.yaml", lambda d: d["developer"].update(num_ctx=100),
     "agents.yaml: developer.num_ctx: 100 is out of range"),
    ("agents.yaml", lambda d: d["developer"].update(fallbacks="x"), "agents.yaml: developer.fallbacks: expected list"),
    ("agents.yaml", lambda d: d["developer"].update(api="cloud"), "agents.yaml: developer.api: API endpoint 'cloud'"),
    ("agents.yaml", lambda d: d["tester"].update(priority=0), "agents.yaml: tester.priority: 0 is out of range"),
    ("agents.yaml", lambda d: d["tester"].update(priority="high"), "agents.yaml: tester.priority: expected int"),
    ("tasks.yaml", lambda d: d.pop("fix_code"), "tasks.yaml: fix_code: missing task"),
    ("tasks.yaml", lambda d: d["implement"].update(agent="intern"), "tasks.yaml: implement.agent: no agent named"),
    ("tasks.yaml", lambda d: d["implement"].update(context=["report"]), "tasks.yaml: implement.context"),
    ("tasks.yaml", lambda d: d.update(extra={"agent": "manager"}), "tasks.yaml: extra: unknown task"),
    ("tasks.yaml", lambda d: d["workflow"].update(max_fix_rounds=-1), "tasks.yaml: workflow.max_fix_rounds"),
    ("tasks.yaml", lambda d: d["workflow"].update(test_timeout_s=0), "tasks.yaml: workflow.test_timeout_s"),
    ("tasks.yaml", lambda d: d["workflow"].update(temperature=-0.1), "tasks.yaml: workflow.temperature"),
    ("tasks.yaml", lambda d: d["workflow"].update(temperature=2.5), "tasks.yaml: workflow.temperature"),
    ("tasks.yaml", lambda d: d["report"].update(max_tokens=8), "tasks.yaml: report.max_tokens"),
    ("tasks.yaml", lambda d: d["report"].update(max_tokens="many"), "tasks.yaml: report.max_tokens"),
    ("tasks.yaml", lambda d: d["specify"].update(stop="```"), "tasks.yaml: specify.stop"),
    ("tasks.yaml", lambda d: d["workflow"].update(class_by_method="yes"), "tasks.yaml: workflow.class_by_method"),
    ("tasks.yaml", lambda d: d["workflow"].update(consensus_tiebreak=11), "tasks.yaml: workflow.consensus_tiebreak"),
    ("tasks.yaml", lambda d: d["specify"].update(stop=["a", "b", "c", "d", "e"]), "tasks.yaml: specify.stop"),
    ("tasks.yaml", lambda d: d["specify"].update(stop=[""]), "tasks.yaml: specify.stop"),
    ("tasks.yaml", lambda d: d.update(inputs=["x"]), "tasks.yaml: inputs"),
    ("gpu_layout.yaml", lambda d: d.update(backend="vllm"), "gpu_layout.yaml: backend: unknown backend"),
    ("gpu_layout.yaml", lambda d: d.update(gpus="all"), "gpu_layout.yaml: gpus"),
    ("gpu_layout.yaml", lambda d: d.update(gpus=[1, 2]), "gpu_layout.yaml: gpus: each GPU"),
    ("gpu_layout.yaml", lambda d: d.update(base_port=80), "gpu_layout.yaml: base_port: 80 is out of range"),
    ("gpu_layout.yaml", lambda d: d.update(simulate="yes"), "gpu_layout.yaml: simulate: expected bool"),
    ("gpu_layout.yaml", lambda d: d.update(colour="red"), "gpu_layout.yaml: colour: unknown key"),
]


@pytest.mark.parametrize(("file", "change", "expected"), CASES)
def test_every_mistake_names_file_and_key(project_dir: Path, file: str, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    _edit(project_dir / file, change)
    with pytest.raises(ConfigError) as info:
        load_project(project_dir)
    line = info.value.one_line()
    assert line.startswith(expected), line
    assert "fix:" in line and "\n" not in line


def test_malformed_yaml_names_the_line(project_dir: Path) -> None:
    (project_dir / "agents.yaml").write_text("manager:\n  role: [unclosed\n")
    with pytest.raises(ConfigError, match=r"agents.yaml line \d+: malformed YAML"):
        load_project(project_dir)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_project(tmp_path)


def test_cli_exit_2_and_one_line_no_traceback(project_dir: Path) -> None:
    _edit(project_dir / "agents.yaml", lambda d: d["manager"].update(num_ctx="lots"))
    proc = subprocess.run([sys.executable, "-m", "crew", "run", "--project", str(project_dir)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "agents.yaml: manager.num_ctx" in lines[0]
    assert "Traceback" not in proc.stderr


def test_priority_defaults_to_the_developer_first_and_can_be_set(project_dir: Path) -> None:
    from crew.config import load_agents

    agents = load_agents(project_dir / "agents.yaml")
    assert {n: a.priority for n, a in agents.items()} == {
        "manager": 1, "developer": 2, "tester": 1, "documentation": 1}
    _edit(project_dir / "agents.yaml", lambda d: d["tester"].update(priority=5))
    assert load_agents(project_dir / "agents.yaml")["tester"].priority == 5


def test_kv_type_defaults_to_q8_0_in_the_file_and_in_the_code(project_dir: Path) -> None:
    from crew.config import LayoutConfig, load_layout

    _edit(project_dir / "gpu_layout.yaml", lambda d: d.pop("kv_type"))
    assert load_layout(project_dir / "gpu_layout.yaml").kv_type == "q8_0" == LayoutConfig().kv_type


def test_crewai_agent_keys_are_honoured_or_refused(project_dir: Path) -> None:
    from crew.run.crew import LocalCrew

    _edit(project_dir / "agents.yaml", lambda d: d["tester"].update(verbose=True, max_iter=7,
                                                                    allow_delegation=False))
    project = load_project(project_dir)
    assert (project.agents["tester"].verbose, project.agents["tester"].max_iter) == (True, 7)
    assert (project.agents["developer"].verbose, project.agents["developer"].max_iter) == (False, 3)
    from tests.fake_llm import ScriptedLLM

    llms = {name: ScriptedLLM(model=f"scripted-{name}") for name in project.agents}
    agents = LocalCrew(project, llms, state=None).agents()  # type: ignore[arg-type]
    assert (agents["tester"].verbose, agents["tester"].max_iter) == (True, 7)
    assert (agents["developer"].verbose, agents["developer"].max_iter) == (False, 3)
    assert not any(a.allow_delegation for a in agents.values())
    _edit(project_dir / "agents.yaml", lambda d: d["tester"].update(allow_delegation=True))
    with pytest.raises(ConfigError, match="delegation is not supported"):
        load_project(project_dir)
    _edit(project_dir / "agents.yaml", lambda d: d["tester"].update(allow_delegation=False, max_iter=0))
    with pytest.raises(ConfigError, match="tester.max_iter"):
        load_project(project_dir)


def test_declared_gpus_and_exclusions_are_typed_entries(project_dir: Path) -> None:
    from crew.config import DeclaredExclusion, DeclaredGpu, load_layout

    _edit(project_dir / "gpu_layout.yaml", lambda d: d.update(
        gpus=[{"name": 3060, "memory_gib": 12, "count": 2, "host": "ws2"},
              {"name": "RTX 3090", "memory_gib": 24.0, "compute_capability": 8.6, "index": 5}],
        exclude=[{"index": 5, "reason": "the display's"}]))
    layout = load_layout(project_dir / "gpu_layout.yaml")
    assert layout.gpus == (DeclaredGpu(name="3060", memory_gib=12.0, host="ws2", count=2),
                           DeclaredGpu(name="RTX 3090", memory_gib=24.0, compute_capability="8.6", index=5))
    assert layout.exclude == (DeclaredExclusion(reason="the display's", index=5),)
    # what only shows across entries is still found when the file is read
    _edit(project_dir / "gpu_layout.yaml", lambda d: d["gpus"][1].update(host="ws2", index=1))
    with pytest.raises(ConfigError) as info:
        load_layout(project_dir / "gpu_layout.yaml")
    assert info.value.one_line().startswith("gpu_layout.yaml: gpus[1].index: GPU 1 of host 'ws2' is declared twice")
