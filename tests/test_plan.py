"""Plans end to end: the five rigs and the CPU with the shipped agents.yaml, detected rigs via a fake NVML,
a declared fleet, infeasible plans with their explanations, the JSON schema, and `plan-gpus` exit codes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from crew.cli import main
from crew.config import DeclaredExclusion, LayoutConfig, load_layout, load_project
from crew.planner.build import plan_for, plan_project
from crew.planner.plan import SCHEMA, plan_from_json, plan_to_json
from crew.planner.render import explain_unplaced
from tests.conftest import ROOT
from tests.layouts import FLEET_YAML, FOUR_3060, MIXED, TWO_3060, FakeNvml, ram

PROJECT = load_project(ROOT)


def _where(plan: object) -> dict[str, tuple[str, tuple[int, ...], str]]:
    return {a.name: (a.placement, a.gpu_indices, a.model) for a in plan.agents}  # type: ignore[attr-defined]


def test_no_gpu_here_plans_every_agent_on_the_embedded_cpu_model() -> None:
    plan = plan_project(PROJECT)  # the real NVML: no driver on this machine
    assert plan.feasible and plan.source == "cpu" and plan.gpus == ()
    # each agent's own num_ctx: the embedded Qwen coder was trained on 32k, so nothing is cut
    assert {a.name: (a.model, a.placement, a.num_ctx) for a in plan.agents} == {
        "manager": ("embedded", "cpu", 8192), "developer": ("embedded", "cpu", 16384),
        "tester": ("embedded", "cpu", 8192), "documentation": ("embedded", "cpu", 8192)}
    assert {a.estimate.weights_bytes for a in plan.agents} == {485_452_288}  # the Qwen file, not SmolLM2's
    assert any("planning for the CPU" in n for n in plan.notes)
    assert plan.cpu is not None and 0 < plan.cpu.planned_bytes <= plan.cpu.usable_bytes


def test_4x_rtx3060_one_agent_per_gpu() -> None:
    plan = plan_project(PROJECT, profile="4x-rtx3060")
    assert plan.feasible and plan.optimal
    assert sorted(a.gpu_indices for a in plan.agents) == [(0,), (1,), (2,), (3,)]
    # with the shipped q8_0 KV cache the 14B coder fits a 3060 at 16384 tokens (f16 would need 11.7 GiB)
    assert plan.agent("developer").model == "ollama/qwen2.5-coder:14b"
    assert all(g.planned_bytes <= g.usable_bytes for g in plan.gpus)
    assert all(a.tokens_per_s and 25 < a.tokens_per_s < 120 for a in plan.agents)


@pytest.mark.parametrize("profile", ["2x-rtx3060", "3x-rtx3060"])
def test_smaller_3060_rigs_share_gpus_with_best_models(profile: str) -> None:
    plan = plan_project(PROJECT, profile=profile)
    assert plan.feasible and all(a.placement == "gpu" for a in plan.agents)
    assert sum(a.candidate_rank for a in plan.agents) <= 1  # at most the developer steps down, to the 7B
    used = {a.gpu_indices for a in plan.agents}
    assert len(used) == len(plan.gpus)  # every GPU works


def test_3090_gives_the_developer_its_14b_and_says_why_another_agent_steps_down() -> None:
    """Before priorities the developer got the 7B (15.8 GiB planned, 7.7 free) because headroom broke the
    tie; the 14B with an 8B agent on a fallback that shares weights fits (20.5 GiB of 23.5)."""
    plan = plan_project(PROJECT, profile="rtx3090")
    assert plan.agent("developer").model == "ollama/qwen2.5-coder:14b"
    assert sum(a.candidate_rank for a in plan.agents) == 1
    assert 20 * 1024**3 < plan.gpus[0].planned_bytes <= plan.gpus[0].usable_bytes
    (why,) = [w for w in plan.warnings if " runs " in w]
    assert "better used" not in why  # the old, untrue reason
    assert "as good by priority (a tie)" in why and "more free on its fullest GPU" in why
    assert "`priority: 2` for" in why  # checked: with it that agent gets its first choice


def test_a_lesser_model_for_lack_of_memory_names_the_kv_type_that_would_fit() -> None:
    plan = plan_for(PROJECT.agents, LayoutConfig(kv_type="f16"), profile="4x-rtx3060")
    (why,) = [w for w in plan.warnings if w.startswith("developer runs")]
    assert "needs 11.7 GiB at ctx 16384; largest usable 11.5 GiB on GPU 0" in why
    assert "`kv_type: q8_0` in gpu_layout.yaml" in why and "`num_ctx: 8192`" in why


def test_a_layout_written_without_kv_type_plans_q8_0_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "gpu_layout.yaml").write_text("gpus:\n  - {name: RTX 3060, memory_gib: 12}\n")
    plan = plan_for(PROJECT.agents, load_layout(tmp_path / "gpu_layout.yaml"), ram=lambda: ram())
    assert {a.kv_type for a in plan.agents if a.placement == "gpu"} == {"q8_0"} and plan.kv_type == "q8_0"


@pytest.mark.parametrize("profile", ["rtx3090", "rtx3090+rtx5060ti"])
def test_3090_rigs_put_everyone_on_the_3090(profile: str) -> None:
    plan = plan_project(PROJECT, profile=profile)
    assert plan.feasible and {a.gpu_indices for a in plan.agents} == {(0,)}
    if "5060" in profile:
        assert plan.gpus[1].excluded and "12.0" in (plan.gpus[1].exclusion_reason or "")
        assert plan.gpus[1].planned_bytes == 0


def test_cpu_profile() -> None:
    plan = plan_project(PROJECT, profile="cpu")
    assert plan.feasible and {a.placement for a in plan.agents} == {"cpu"}


def test_detected_rig_uses_free_memory_and_uuids() -> None:
    plan = plan_project(PROJECT, nvml=FakeNvml(FOUR_3060), ram=lambda: ram())
    assert plan.source == "detected" and plan.feasible
    assert plan.gpus[0].usable_bytes < plan.gpus[1].usable_bytes  # the display's memory is not usable
    assert [g.uuid for g in plan.gpus] == [f"GPU-3060-{i:04d}" for i in range(4)]
    two = plan_project(PROJECT, nvml=FakeNvml(TWO_3060), ram=lambda: ram())
    assert two.feasible and len({a.gpu_indices for a in two.agents}) == 2


def test_detected_mixed_rig_with_exclusion_rule() -> None:
    layout = LayoutConfig(exclude=(DeclaredExclusion(reason="Blackwell: no kernels yet", name="5060"),))
    plan = plan_for(PROJECT.agents, layout, nvml=FakeNvml(MIXED), ram=lambda: ram())
    assert plan.gpus[1].excluded and plan.gpus[1].exclusion_reason == "Blackwell: no kernels yet"
    assert {a.gpu_indices for a in plan.agents} == {(0,)}


def test_declared_fleet_plans_per_host(tmp_path: Path) -> None:
    (tmp_path / "gpu_layout.yaml").write_text(FLEET_YAML)
    plan = plan_for(PROJECT.agents, load_layout(tmp_path / "gpu_layout.yaml"), ram=lambda: ram())
    assert plan.feasible and plan.source == "declared"
    placed = {(a.host, a.gpu_indices) for a in plan.agents}
    assert len(placed) == 4  # four agents, eleven usable GPUs: one each
    # the 14B fits a 3090 (23.5 GiB usable): the developer gets its first choice there
    assert plan.agent("developer").model == "ollama/qwen2.5-coder:14b"
    assert plan.agent("developer").host in ("ws3", "ws4")


def _infeasible_agents(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "agents.yaml").read_text())
    data["developer"].update(fallbacks=[], cpu_model="none")
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_infeasible_plan_explains_in_numbers_with_checked_ways_out(tmp_path: Path) -> None:
    from crew.config import load_agents

    plan = plan_for(load_agents(_infeasible_agents(tmp_path)), LayoutConfig(kv_type="f16"), profile="2x-rtx3060")
    assert not plan.feasible
    (u,) = plan.unplaced
    assert u.agent == "developer"
    assert u.reason.startswith(
        "needs 11.7 GiB at ctx 16384 (its only candidate, ollama/qwen2.5-coder:14b); "
        "largest usable 11.5 GiB on GPU 0 (NVIDIA GeForce RTX 3060)"
    )
    text = "\n".join(u.suggestions)
    assert "`num_ctx: 8192`" in text and "q8_0" in text and "0.2 GiB more" in text
    assert "allow_split: true" in text
    # the placed model of its own family, not the first placed one (documentation's llama3.1 on GPU 1 fits too)
    assert "share ollama/qwen2.5-coder:7b, which tester already has on GPU 1" in text and "llama3.1" not in text
    assert explain_unplaced(plan).startswith("developer: needs 11.7 GiB")


def test_json_schema_round_trip() -> None:
    plan = plan_project(PROJECT, profile="4x-rtx3060")
    data = json.loads(json.dumps(plan_to_json(plan)))
    assert data["schema"] == SCHEMA and data["feasible"] is True
    assert set(data["gpus"][0]) >= {
        "index",
        "host",
        "name",
        "uuid",
        "total_bytes",
        "usable_bytes",
        "planned_bytes",
        "excluded",
        "agents",
        "headroom_bytes",
    }
    a = data["agents"][0]
    assert set(a) >= {"name", "model", "candidate_rank", "placement", "gpu_indices", "num_ctx", "estimate"}
    assert set(a["estimate"]) >= {
        "weights_bytes",
        "kv_cache_bytes",
        "compute_bytes",
        "overhead_bytes",
        "total_bytes",
    }
    assert data["unplaced"] == [] and isinstance(a["gpu_indices"], list)
    assert plan_from_json(data) == plan
    with pytest.raises(ValueError, match="schema"):
        plan_from_json({**data, "schema": "other/1"})


def test_cli_exit_codes_json_and_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    saved = tmp_path / "plan.json"
    assert main(["--profile", "4x-rtx3060", "--json", "--save", str(saved)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] and len(out["servers"]) == 4
    assert out["servers"][0]["env"] == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0"}
    assert plan_from_json(json.loads(saved.read_text())) == plan_from_json(out)
    f16 = tmp_path / "f16"  # the same project with an f16 KV cache, where the 14B alone cannot fit a 3060
    f16.mkdir()
    for name in ("tasks.yaml", "gpu_layout.yaml"):
        (f16 / name).write_text((ROOT / name).read_text().replace("kv_type: q8_0", "kv_type: f16"))
    monkeypatch.chdir(f16)
    assert main(["--profile", "2x-rtx3060", "--agents", str(_infeasible_agents(tmp_path))]) == 1
    monkeypatch.chdir(ROOT)
    text = capsys.readouterr().out
    assert "Not placed" in text and "needs 11.7 GiB" in text
    assert main(["--profile", "rtx4090"]) == 2
    assert "unknown profile 'rtx4090'" in capsys.readouterr().err
    assert main(["--layout", str(tmp_path / "missing.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["--profile", "cpu", "--layout", "x.yaml"]) == 2  # argparse: one or the other
    assert main(["profiles"]) == 0 and "rtx3090+rtx5060ti" in capsys.readouterr().out
    assert main(["--profile", "cpu", "--save", str(tmp_path / "no" / "such" / "dir.json")]) == 2
    assert "cannot write the plan" in capsys.readouterr().err
    data = yaml.safe_load((ROOT / "agents.yaml").read_text())
    data["tester"]["api"] = "openrouter"
    (tmp_path / "api.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["--profile", "cpu", "--agents", str(tmp_path / "api.yaml")]) == 2
    assert "agents.yaml: tester.api: API endpoint 'openrouter' is not declared" in capsys.readouterr().err


def test_cli_rich_view_shows_gpus_agents_and_launch_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["--profile", "rtx3090+rtx5060ti"]) == 0
    out = capsys.readouterr().out
    for words in (
        "RTX 3090",
        "excluded: compute capability 12.0",
        "Agents",
        "Launch commands",
        "CUDA_VISIBLE_DEVICES=0",
        "--port 11500",
        "every agent is placed",
        "tok/s: bandwidth roofline, not measured",
        "KV cache on GPUs: q8_0 (gpu_layout.yaml `kv_type`, q8_0 unless set); f16 for CPU models",
    ):
        assert words in out, words


def _agents_with(tmp_path: Path, **fallbacks: list[str]) -> Path:
    data = yaml.safe_load((ROOT / "agents.yaml").read_text())
    for name, extra in fallbacks.items():
        data[name]["fallbacks"] = [*extra, *data[name]["fallbacks"]]
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_left_out_models_say_why_and_strict_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crew.config import load_agents

    (tmp_path / "html.gguf").write_text("<html>rate limited</html>")
    agents = _agents_with(tmp_path, developer=[str(tmp_path / "gone.gguf"), str(tmp_path / "html.gguf"),
                                               "ollama/qwen9:7b"])
    plan = plan_for(load_agents(agents), LayoutConfig(), profile="4x-rtx3060")
    assert plan.feasible
    assert [(x.agent, x.model) for x in plan.left_out] == [
        ("developer", str(tmp_path / "gone.gguf")), ("developer", str(tmp_path / "html.gguf")),
        ("developer", "ollama/qwen9:7b")]
    gone, html, tag = (x.reason for x in plan.left_out)
    assert gone == "file not found" and html.startswith("not a GGUF file (it starts with b'<htm'")
    assert tag.startswith("unknown model 'ollama/qwen9:7b': not a file, not installed in Ollama, not in the catalog")
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan
    monkeypatch.chdir(ROOT)
    assert main(["--profile", "4x-rtx3060", "--agents", str(agents)]) == 0
    out = capsys.readouterr().out
    assert f"left out of the plan: developer's model {tmp_path / 'gone.gguf'}: file not found" in out
    assert main(["--profile", "4x-rtx3060", "--agents", str(agents), "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"plan-gpus: agents.yaml: developer: model {tmp_path / 'gone.gguf'} is left out "
                          "of the plan: file not found (and 2 more in the plan) — fix: check the path")
    assert "\n" not in err and "Traceback" not in err
    assert main(["--profile", "4x-rtx3060", "--strict"]) == 0  # the shipped agents: nothing left out


def test_no_gpu_note_comes_before_everything_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main([]) == 0  # `gpus: detect` here: no driver
    out = capsys.readouterr().out
    assert out.startswith("note: no NVIDIA GPU can be used:") and "planning for the CPU" in out.splitlines()[0]


LAPTOP_4GB = "gpus:\n  - {name: NVIDIA GeForce RTX 3050 Laptop GPU, memory_gib: 4}\n"


def test_a_4gb_laptop_gpu_suggests_sharing_the_model_the_developer_has_there(tmp_path: Path) -> None:
    (tmp_path / "gpu_layout.yaml").write_text(LAPTOP_4GB)
    plan = plan_for(PROJECT.agents, load_layout(tmp_path / "gpu_layout.yaml"), ram=lambda: ram())
    assert plan.agent("developer").model == "ollama/qwen2.5-coder:1.5b"
    on_cpu = [a.name for a in plan.agents if a.placement == "cpu"]
    assert on_cpu == ["manager", "tester", "documentation"]
    for name in on_cpu:
        (w,) = [w for w in plan.warnings if w.startswith(f"{name} runs on its CPU fallback")]
        assert (f"share ollama/qwen2.5-coder:1.5b, which developer already has on GPU 0: add it to {name}'s "
                "fallbacks") in w
    # taken as suggested, by all three at once: every agent on the GPU, one copy of the weights
    agents = {n: replace(a, fallbacks=(*a.fallbacks, "ollama/qwen2.5-coder:1.5b")) if n in on_cpu else a
              for n, a in PROJECT.agents.items()}
    after = plan_for(agents, load_layout(tmp_path / "gpu_layout.yaml"), ram=lambda: ram())
    assert {a.placement for a in after.agents} == {"gpu"}
    assert after.gpus[0].planned_bytes <= after.gpus[0].usable_bytes
    assert after.gpus[0].weights_bytes < 2 * plan.agent("developer").estimate.weights_bytes
    # the laptop part's own bandwidth (192 GB/s), not the desktop card's and not unknown
    assert plan.gpus[0].bandwidth_bytes_per_s == 192 * 10**9 and plan.agent("developer").tokens_per_s


def test_a_model_that_fits_only_across_gpus_suggests_allow_split_with_the_gpus() -> None:
    agents = {**PROJECT.agents, "manager": replace(PROJECT.agents["manager"], llm="ollama/qwen2.5-coder:32b")}
    plan = plan_for(agents, LayoutConfig(), profile="4x-rtx3060")
    (w,) = [w for w in plan.warnings if w.startswith("manager runs")]
    assert "largest usable 11.5 GiB" in w
    assert "allow a split across GPUs (`allow_split: true` in gpu_layout.yaml): it then spans GPU 0 + GPU 1" in w
    split = plan_for(agents, LayoutConfig(allow_split=True), profile="4x-rtx3060").agent("manager")
    assert (split.model, split.placement, split.gpu_indices) == ("ollama/qwen2.5-coder:32b", "split", (0, 1))


def test_upgrades_the_headroom_takes_are_offered_and_checked() -> None:
    plan = plan_project(PROJECT, profile="4x-rtx3060")
    assert len(plan.upgrades) == 2
    manager, tester = plan.upgrades
    assert manager.startswith("manager could run the bigger ollama/qwen3:14b (9.3 GiB at ctx 8192)")
    assert tester.startswith("tester could run the bigger ollama/qwen2.5-coder:14b")
    # llama3.1 has no bigger family member in the catalog; the developer already runs the 14B on a full GPU
    assert not any(u.startswith(("documentation", "developer")) for u in plan.upgrades)
    up = {**PROJECT.agents, "manager": replace(PROJECT.agents["manager"], llm="ollama/qwen3:14b",
                                               fallbacks=("ollama/qwen3:8b",))}
    after = plan_for(up, PROJECT.layout, profile="4x-rtx3060")
    assert after.agent("manager").model == "ollama/qwen3:14b"
    assert [a.model for a in after.agents if a.name != "manager"] == [
        a.model for a in plan.agents if a.name != "manager"]
    assert plan_project(PROJECT, profile="2x-rtx3060").upgrades == ()  # no room there
