"""agents.yaml `tools:` through CrewAI: an agent whose model can call tools gets the read-only workspace
tools, and a call made through CrewAI's own tool path reaches the run's files. The model is scripted (a
BaseLLM that calls the functions CrewAI offers it): orchestration is what is tested, not a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from crewai import Crew, Process, Task
from crewai.llms.base_llm import BaseLLM
from pydantic import PrivateAttr

from tests.fake_llm import ScriptedLLM


class ToolCallingLLM(BaseLLM):
    """Asks for read_file on `path` the way an OpenAI-style model does (a tool call), then answers with the
    tool's result that CrewAI put in the conversation."""

    path: str = "notes.txt"
    _offered: list[list[str]] = PrivateAttr(default_factory=list)

    def call(self, messages: Any, tools: Any = None, callbacks: Any = None, available_functions: Any = None,
             from_task: Any = None, from_agent: Any = None, response_model: Any = None) -> Any:
        names = sorted(t["function"]["name"] for t in tools or [])
        self._offered.append(names)
        last = messages[-1] if isinstance(messages, list) and messages else {}
        if last.get("role") == "tool":
            return f"Thought: I read it\nFinal Answer: the file says: {last.get('content')}"
        if "read_file" in names:
            return [{"id": "call_1", "type": "function",
                     "function": {"name": "read_file", "arguments": json.dumps({"path": self.path})}}]
        return "Thought: no tools\nFinal Answer: I could not read anything"

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 8192

    @property
    def offered(self) -> list[list[str]]:
        return self._offered


def _crew(project_dir: Path, **tools: str) -> tuple[Any, Any, dict[str, Any]]:
    from crew.config import load_project
    from crew.run.crew import LocalCrew
    from crew.run.workflow import open_state, run_inputs

    data = yaml.safe_load((project_dir / "agents.yaml").read_text())
    for name, setting in tools.items():
        data[name]["tools"] = setting
    (project_dir / "agents.yaml").write_text(yaml.safe_dump(data))
    project = load_project(project_dir)
    inputs = run_inputs(project, task="Write add(a, b) in calc.py that returns a + b.", module=None)
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, lambda _: None)
    llms: dict[str, Any] = {n: ScriptedLLM(model=f"scripted-{n}", script={}) for n in project.agents}
    llms["developer"] = ToolCallingLLM(model="tool-caller")
    llms["tester"] = ToolCallingLLM(model="tool-caller-2")
    return LocalCrew(project, llms, state), state, llms


def test_an_agent_with_tools_reads_the_runs_files_through_crewais_tool_path(project_dir: Path) -> None:
    local, state, llms = _crew(project_dir, developer="on", tester="off")
    agents = local.agents()
    assert sorted(t.name for t in agents["developer"].tools) == ["last_test_output", "list_files", "read_file"]
    assert agents["tester"].tools == [] and agents["manager"].tools == []  # off; a model that cannot call them
    (state.workspace.root / "notes.txt").write_text("the spec says: add two numbers\n")
    task = Task(description="Read notes.txt and say what it says.", expected_output="its text",
                agent=agents["developer"])
    out = Crew(agents=[agents["developer"]], tasks=[task], process=Process.sequential).kickoff()
    assert "the spec says: add two numbers" in str(out)
    assert "read_file" in llms["developer"].offered[0]


def test_a_read_outside_the_workspace_comes_back_as_an_error_the_agent_sees(project_dir: Path) -> None:
    local, state, llms = _crew(project_dir, developer="on")
    llms["developer"].path = "../../agents.yaml"
    agents = local.agents()
    task = Task(description="Read it.", expected_output="text", agent=agents["developer"])
    out = str(Crew(agents=[agents["developer"]], tasks=[task], process=Process.sequential).kickoff())
    assert "Error:" in out and "leave the workspace" in out and "role:" not in out


def test_tools_setting_is_checked(project_dir: Path) -> None:
    import pytest

    from crew.config import load_project
    from crew.errors import ConfigError

    data = yaml.safe_load((project_dir / "agents.yaml").read_text())
    data["developer"]["tools"] = "always"
    (project_dir / "agents.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="developer.tools"):
        load_project(project_dir)
