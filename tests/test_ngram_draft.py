"""`draft_model: ngram`: llama-server drafts tokens from n-grams of the context — planned as no memory, passed
as llama-server's flags, never beside a draft model, and left out of llama-cpp-python's server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crew.serving.spec import NGRAM_ARGS, ServedModel, llamacpp_spec


def _plan(project_dir: Path, developer: dict[str, object]) -> object:
    from crew.config import load_project
    from crew.planner.build import plan_project

    agents = yaml.safe_load((project_dir / "agents.yaml").read_text())
    agents["developer"].update(developer)
    (project_dir / "agents.yaml").write_text(yaml.safe_dump(agents))
    return plan_project(load_project(project_dir))


def test_ngram_drafting_is_planned_as_nothing_and_passed_to_llama_server(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crew.config import load_project
    from crew.serving.launch import launch_specs

    monkeypatch.setenv("LOCALCREW_LLAMA_SERVER", "/opt/llama-server")  # planned for, never started
    plain = _plan(project_dir, {})
    ngram = _plan(project_dir, {"draft_model": "ngram"})
    dev = next(a for a in ngram.agents if a.name == "developer")  # type: ignore[attr-defined]
    assert dev.ngram and dev.draft_path is None and dev.draft_bytes == 0
    assert not ngram.left_out  # type: ignore[attr-defined]  # "ngram" is no model to find
    layout = load_project(project_dir).layout
    spec0 = launch_specs(plain, layout, server_binary="/opt/llama-server")[0]
    spec1 = launch_specs(ngram, layout, server_binary="/opt/llama-server")[0]
    assert spec1.planned_bytes == spec0.planned_bytes  # no model, no memory of its own
    argv = list(spec1.argv)
    i = argv.index("--spec-type")
    assert tuple(argv[i:i + len(NGRAM_ARGS)]) == NGRAM_ARGS and "--spec-type" not in spec0.argv


def test_a_draft_model_wins_over_ngram_and_llama_cpp_python_gets_neither() -> None:
    both = ServedModel(alias="m", path="/m.gguf", ctx_tokens=4096, draft_path="/d.gguf", ngram=True)
    argv = llamacpp_spec("cpu", (both,), 12345, server_binary="/opt/llama-server").argv
    assert "--model-draft" in argv and "--spec-type" not in argv
    ngram = ServedModel(alias="m", path="/m.gguf", ctx_tokens=4096, ngram=True)
    assert "--spec-type" not in " ".join(llamacpp_spec("cpu", (ngram,), 12345).argv)
