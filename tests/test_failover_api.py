"""Failover to the declared API endpoint, when no server and no CPU model can take the agent."""

from __future__ import annotations

from pathlib import Path

from crew.journal.log import RunLog
from crew.serving.failover import Router
from crew.serving.llm import served_llm
from crew.serving.process import Supervisor, free_port
from tests.fake_ollama import FakeOllama


def test_dead_server_without_cpu_model_moves_to_the_api_endpoint(tmp_path: Path) -> None:
    api = FakeOllama(reply="answer from the API")
    api.add_model("gpt-local", 1)
    port = free_port(12950)
    api.start("127.0.0.1", port)
    try:
        dead = f"http://127.0.0.1:{free_port(port + 1)}"  # nothing listens there
        llm = served_llm(agent="tester", base_url=dead, model_alias="m", ctx_tokens=4096, device="gpu 0",
                         retries=0, timeout_s=10)
        lines: list[str] = []
        router = Router(supervisor=Supervisor(tmp_path), log=RunLog(tmp_path / "run.jsonl"), say=lines.append,
                        binding={"tester": ("gpu0", "m")}, cpu_fallback=lambda agent: None,
                        api_fallback=lambda agent: (f"http://127.0.0.1:{port}/v1", "gpt-local", "sk-test"))
        llm.on_unreachable(router)
        answer = llm.call("Say something.")
        assert "answer from the API" in str(answer)
        assert llm.device == "api (failover)" and router.binding["tester"] == ("api", "gpt-local")
        assert any("moved from gpu0 to its API endpoint" in ln for ln in lines)
        fault = RunLog(tmp_path / "run.jsonl").of("serving_fault")[-1]
        assert fault["action"] == "failover" and "moved from gpu0 to its API endpoint" in fault["text"]
    finally:
        api.close()
