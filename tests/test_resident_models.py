"""Planned as co-resident means resident: alternating agents never reload a model (issue #15 §1).

llama-cpp-python's multi-model server (`--config_file` with several models) keeps one model loaded at a
time: requests A, B, A, B load a model on every switch. The plan now gives each model on a GPU a server
of its own, pinned to that GPU, so every model is loaded once and stays. Real llama.cpp servers on a
simulated GPU (`simulate: true`: CPU servers with the planned pinning), two copies of embedded-tiny
standing for two models; the load count is read from each server's own log.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from crew.models.embedded import tiny_model_path
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

LOAD_LINE = "llama_model_loader: loaded meta data"


def _project(tmp_path: Path) -> Path:
    a, b = tmp_path / "alpha.gguf", tmp_path / "beta.gguf"
    shutil.copyfile(tiny_model_path(), a)
    shutil.copyfile(tiny_model_path(), b)
    agents = yaml.safe_load((ROOT / "agents.yaml").read_text())
    for name, spec in agents.items():
        spec.update(llm=str(a if name in ("manager", "documentation") else b), fallbacks=[], num_ctx=2048)
    (tmp_path / "agents.yaml").write_text(yaml.safe_dump(agents))
    (tmp_path / "tasks.yaml").write_text((ROOT / "tasks.yaml").read_text())
    (tmp_path / "gpu_layout.yaml").write_text(yaml.safe_dump({
        "backend": "llamacpp", "simulate": True, "base_port": 12700,
        "gpus": [{"name": "RTX 3060", "memory_gib": 12, "uuid": "GPU-33333333-cccc"}]}))
    return tmp_path


def _ask(base_url: str, model: str) -> None:
    from crew.serving.process import http_json

    http_json(base_url + "/v1/chat/completions", timeout_s=120, payload={
        "model": model, "max_tokens": 2, "temperature": 0,
        "messages": [{"role": "user", "content": "Say hi."}]})


def test_two_models_planned_on_one_gpu_are_two_pinned_servers_and_never_reload(tmp_path: Path) -> None:
    from crew.config import load_project
    from crew.planner.build import plan_for_run
    from crew.serving.bind import prepare_specs
    from crew.serving.launch import agent_endpoints
    from crew.serving.process import Supervisor

    project = load_project(_project(tmp_path))
    plan = plan_for_run(project)
    specs = prepare_specs(plan, project)
    assert sorted(s.server_id for s in specs) == ["gpu0-alpha", "gpu0-beta"]
    assert {s.planned_pinning for s in specs} == {"GPU-33333333-cccc"}  # both pinned to the one GPU
    # the plan counts a runtime overhead (a CUDA context on a real GPU) per process: two here
    (gpu,) = plan.gpus
    assert gpu.overhead_bytes == 2 * max(a.estimate.overhead_bytes for a in plan.agents)
    ends = agent_endpoints(plan, specs)
    sup = Supervisor(tmp_path / "servers")
    with sup.running(specs, timeout_s=120):
        for agent in ("manager", "developer", "documentation", "tester", "manager", "developer"):
            spec, model = ends[agent]
            _ask(spec.base_url, model.alias)
        loads = {sid: srv.log_path.read_text(errors="replace").count(LOAD_LINE)
                 for sid, srv in sup.servers.items()}
    assert loads == {"gpu0-alpha": 1, "gpu0-beta": 1}


def test_the_multi_model_server_we_left_reloads_on_every_switch(tmp_path: Path) -> None:
    """Why: the same alternation against one llama.cpp server holding both models (what plans used to
    start) loads a model on each switch. This is the behaviour the one-server-per-model plan avoids."""
    from crew.serving.process import Supervisor, free_port
    from crew.serving.spec import ServedModel, llamacpp_spec

    models = tuple(ServedModel(alias=n, path=str(p), ctx_tokens=2048, n_gpu_layers=0)
                   for n, p in (("alpha", tiny_model_path()), ("beta", tiny_model_path())))
    spec = llamacpp_spec("both", models, free_port(12750))
    sup = Supervisor(tmp_path / "servers")
    with sup.running([spec], timeout_s=120):
        for alias in ("alpha", "beta", "alpha", "beta"):
            _ask(spec.base_url, alias)
        loads = sup.servers["both"].log_path.read_text(errors="replace").count(LOAD_LINE)
    assert loads >= 4  # one per switch (the first request loads too): never 2
