"""What each request carries to the server: greedy first answers, hotter retries, per-task answer limits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from crew.serving.llm import served_llm
from crew.serving.process import free_port
from tests.fake_ollama import FakeOllama


def _task(name: str) -> Any:
    return SimpleNamespace(name=name, id=name, description="", agent=None, i18n=None)


def test_first_answer_greedy_retry_hotter_and_a_tasks_own_token_limit() -> None:
    with FakeOllama(reply="ok").start("127.0.0.1", free_port(12980)) as api:
        api.add_model("m", 1)
        llm = served_llm(agent="manager", base_url=api.base_url, model_alias="m", ctx_tokens=4096, device="cpu",
                         max_tokens=300, seed=42, temperature=0.0, task_max_tokens={"report": 120}, retries=0,
                         timeout_s=10)
        llm.call([{"role": "user", "content": "Write a spec."}], from_task=_task("specify"))
        llm.call([{"role": "user", "content": "Summarise."}], from_task=_task("report"))
        llm.call([{"role": "user", "content": "Previous attempt failed validation: again"}],
                 from_task=_task("specify"))
        first, report, retry = api.bodies("/v1/chat/completions")
    assert (first["temperature"], first["seed"], first["max_tokens"]) == (0.0, 42, 300)
    assert report["max_tokens"] == 120 and report["temperature"] == 0.0
    assert retry["temperature"] == 0.8 and retry["seed"] == 43 and retry["max_tokens"] == 300
    assert (llm.temperature, llm.seed, llm.max_tokens) == (0.0, 42, 300)  # nothing leaks into the next call


def test_a_tasks_stop_strings_go_to_the_server_and_an_answer_stopped_at_once_names_the_stop() -> None:
    with FakeOllama(reply="").start("127.0.0.1", free_port(12982)) as api:
        api.add_model("m", 1)
        llm = served_llm(agent="manager", base_url=api.base_url, model_alias="m", ctx_tokens=4096, device="cpu",
                         max_tokens=300, seed=42, temperature=0.0, task_stop={"specify": ["```"]}, retries=0,
                         timeout_s=10)
        spec = llm.call([{"role": "user", "content": "Write a spec."}], from_task=_task("specify"))
        llm.call([{"role": "user", "content": "Summarise."}], from_task=_task("report"))
        llm.call([{"role": "user", "content": "Direct request."}])
        first, report, direct = api.bodies("/v1/chat/completions")
    assert first["stop"] == ["```"]
    assert "stop" not in report and "stop" not in direct   # only the task that asks for it
    assert spec == "```"   # empty because the server stopped at the fence: the guardrail sees code, not nothing
