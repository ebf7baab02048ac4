"""A later task's first request sent as soon as what it reads is done (crew/run/overlap.py): which tasks, and
that CrewAI's own request then takes the answer already asked instead of asking again."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from crew.config import load_project
from crew.run.overlap import ahead_plan, ask_ahead
from crew.serving.llm import served_llm
from crew.serving.process import free_port
from tests.fake_ollama import FakeOllama

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")


def test_the_shipped_workflow_asks_tests_and_report_after_specify_and_the_readme_after_implement() -> None:
    tasks = load_project(Path(__file__).resolve().parent.parent).tasks.tasks
    plan = ahead_plan(list(tasks), {n: tuple(t.context) for n, t in tasks.items()}, skip=frozenset({"fix_code"}))
    assert plan == {"specify": ["write_tests", "report"], "implement": ["document"]}


def test_a_task_run_right_after_its_context_or_reading_two_tasks_is_not_asked_ahead() -> None:
    order = ["a", "b", "c", "d"]
    assert ahead_plan(order, {"b": ("a",), "c": ("b",), "d": ("a", "b")}) == {}
    assert ahead_plan(order, {"d": ("a",)}) == {"a": ["d"]}
    assert ahead_plan(order, {"d": ("a",)}, skip=frozenset({"d"})) == {}
    assert ahead_plan(order, {"d": ("zz",)}) == {}   # a context that is no task: nothing to wait for


class _Log:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def record(self, event: Any) -> None:
        self.records.append(event)


class _State:
    def __init__(self) -> None:
        self.log = _Log()


@pytest.mark.parametrize("same_context", [True, False])
def test_crewai_takes_the_answer_asked_ahead_only_for_the_very_same_request(same_context: bool) -> None:
    from crewai import Agent, Task

    with FakeOllama(reply="The team built a module.").start("127.0.0.1", free_port(12984)) as api:
        api.add_model("m", 1)
        llm = served_llm(agent="manager", base_url=api.base_url, model_alias="m", ctx_tokens=4096, device="cpu",
                         server_slots=2, max_tokens=64, seed=1, temperature=0.0, retries=0, timeout_s=10)
        agent = Agent(role="Engineering manager", goal="Report", backstory="Terse.", llm=llm,
                      allow_delegation=False, max_iter=1, cache=False)
        task = Task(name="report", description="Summarise what was built.", expected_output="One sentence.",
                    agent=agent)
        state = _State()
        thread = ask_ahead(state, agent, task, "The specification.", "manager")
        assert thread is not None
        thread.join(timeout=30)
        assert len(api.bodies("/v1/chat/completions")) == 1          # sent before CrewAI reached the task
        answer = agent.execute_task(task, context="The specification." if same_context else "Another spec.")
        sent = api.bodies("/v1/chat/completions")
    assert "The team built a module." in str(answer)
    assert len(sent) == (1 if same_context else 2)   # taken, or asked again when the prompt differs
    [record] = state.log.records
    assert (record.task, record.agent, record.sent) == ("report", "manager", True)
