"""An agent the planner places on its declared OpenAI-compatible endpoint: planned, bound and really called."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crew.config import ApiEndpoint, load_project
from crew.errors import ConfigError
from crew.planner.build import plan_for
from crew.serving.bind import bind_agents
from crew.serving.launch import agent_endpoints, launch_specs
from crew.serving.process import free_port
from tests.conftest import ROOT
from tests.fake_ollama import FakeOllama


def _project(base_url: str, key_env: str | None = None):  # type: ignore[no-untyped-def]
    project = load_project(ROOT)
    agents = dict(project.agents)
    # no CPU model and no GPU on the rig: the developer's only place is the API endpoint it declares
    agents["developer"] = replace(agents["developer"], cpu_model="none", api="local-api")
    endpoint = ApiEndpoint(name="local-api", model="openai/gpt-local", base_url=base_url, api_key_env=key_env)
    layout = replace(project.layout, api_endpoints={"local-api": endpoint})
    return replace(project, agents=agents, layout=layout)


def test_planned_on_the_api_bound_and_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALCREW_API_KEY", "sk-test")
    api = FakeOllama(reply="answer from the API endpoint")
    api.add_model("gpt-local", 1)
    port = free_port(12990)
    api.start("127.0.0.1", port)
    try:
        project = _project(f"http://127.0.0.1:{port}/v1", key_env="LOCALCREW_API_KEY")
        plan = plan_for(project.agents, project.layout, profile="cpu")
        dev = plan.agent("developer")
        assert plan.feasible and dev.placement == "api" and dev.model == "openai/gpt-local"
        assert all(a.placement == "cpu" for a in plan.agents if a.name != "developer")
        specs = launch_specs(plan, project.layout)
        assert "developer" not in agent_endpoints(plan, specs)  # no server of ours for an API agent
        bound = bind_agents(plan, specs, project)
        assert bound.where["developer"] == ("openai/gpt-local", "api", "local-api")
        assert "developer" not in bound.binding  # failover has no server of ours to restart for it
        answer = bound.llms["developer"].call("Say something.")
        assert "answer from the API endpoint" in str(answer)
        (body,) = api.bodies("/v1/chat/completions")
        assert body["model"] == "gpt-local" and api.authorizations == ["Bearer sk-test"]
    finally:
        api.close()


def test_a_missing_api_key_is_one_line_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALCREW_API_KEY", raising=False)
    project = _project("http://127.0.0.1:9/v1", key_env="LOCALCREW_API_KEY")
    plan = plan_for(project.agents, project.layout, profile="cpu")
    with pytest.raises(ConfigError) as err:
        bind_agents(plan, launch_specs(plan, project.layout), project)
    assert err.value.where == "gpu_layout.yaml: api_endpoints.local-api.api_key_env"
    assert "LOCALCREW_API_KEY is not set" in err.value.what and "export LOCALCREW_API_KEY" in (err.value.fix or "")
