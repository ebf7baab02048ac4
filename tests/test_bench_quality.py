"""The quality benchmark's two-task smoke run (the full benchmark is too slow for CI), and its honesty rules."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "benchmarks" / "bench_quality.py"
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_development_and_acceptance_sets_are_disjoint_and_complete() -> None:
    import bench_quality as bq

    dev = {t.id for t in bq.humaneval_tasks(bq.DEV)}
    acc = {t.id for t in bq.humaneval_tasks(bq.ACCEPTANCE)}
    assert len(dev) == 82 and len(acc) == 82 and not dev & acc
    assert "HumanEval/81" in dev and "HumanEval/82" in acc
    picked = [t.id for t in bq.select("dev", 5, seed=7)]
    assert picked == [t.id for t in bq.select("dev", 5, seed=7)] and len(set(picked)) == 5  # seeded, repeatable
    assert all(not t.startswith("HumanEval/") or int(t.split("/")[1]) < 82 for t in picked)


def test_a_limited_run_is_a_prefix_of_the_full_seeded_order() -> None:
    import bench_quality as bq

    full = [t.id for t in bq.select("dev", None, seed=3)]
    assert len(full) == 82 + len(bq.own_tasks()) and len(set(full)) == len(full)
    assert [t.id for t in bq.select("dev", 10, seed=3)] == full[:10]  # a stopped run measured a random sample
    assert full != [t.id for t in bq.select("dev", None, seed=4)]


def test_resume_takes_only_a_run_of_the_same_settings_and_code(tmp_path: Path) -> None:
    import argparse

    import bench_quality as bq

    args = argparse.Namespace(set="own", seed=0, model="embedded", limit=None)
    done = [bq.Result(id="own/roman", one_shot_pass=True, crew_pass=True, crew_report_pass=True)]
    out = tmp_path / "run.json"
    bq._save(out, bq.summarise(done, args, "abc123"), done)
    assert [r.id for r in bq._resumed(out, args, "abc123")] == ["own/roman"]
    with pytest.raises(ValueError, match="commit 'abc123', this run 'def456'"):  # other workflow code
        bq._resumed(out, args, "def456")
    with pytest.raises(ValueError, match="seed 0, this run 1"):
        bq._resumed(out, argparse.Namespace(set="own", seed=1, model="embedded", limit=None), "abc123")
    out.write_text("{not json")
    with pytest.raises(ValueError, match="not a bench_quality result"):
        bq._resumed(out, args, "abc123")
    assert not (tmp_path / "run.json.tmp").exists()


def test_the_benchmark_never_reads_a_reference_solution() -> None:
    tree = ast.parse(BENCH.read_text())
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert "canonical_solution" not in literals


def test_hidden_tests_are_not_in_what_the_crew_sees() -> None:
    import bench_quality as bq

    for task in [*bq.own_tasks(), *bq.humaneval_tasks(range(0, 82))]:
        assert "def test_" not in task.prompt and "check(" not in task.prompt


@pytest.mark.slow
def test_two_task_smoke_run(tmp_path: Path) -> None:
    out, kept = tmp_path / "out.json", tmp_path / "kept"
    env = {**os.environ, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
           "CREWAI_TRACING_ENABLED": "false"}
    proc = subprocess.run([sys.executable, str(BENCH), "--set", "own", "--limit", "2", "--seed", "0",
                           "--model", "embedded-tiny", "--json", str(out), "--keep", str(kept)],
                          capture_output=True, text=True, timeout=1200, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["schema"] == "localcrew.bench-quality/1"
    s, tasks = data["summary"], data["tasks"]
    assert s["tasks"] == len(tasks) == 2
    assert s["one_shot"]["passed"] == sum(t["one_shot_pass"] for t in tasks)
    assert s["crew"]["passed"] == sum(t["crew_pass"] for t in tasks)
    assert s["crew"]["false_pass"] == sum(1 for t in tasks if t["crew_report_pass"] is True and not t["crew_pass"])
    assert all(t["crew_report_pass"] is not None for t in tasks), "every crew run must end with a report"
    assert all(t["crew_s"] > 0 and t["one_shot_s"] > 0 for t in tasks)
    assert "pass@1" in proc.stdout and "false PASS" in proc.stdout and "difference" in proc.stdout
    # the hidden tests were never in a run folder: nothing the crew had holds the judge's file or assertions
    import bench_quality as bq

    hidden = {t.id.replace("/", "-"): t.hidden for t in bq.own_tasks()}
    for run in kept.iterdir():
        for f in run.rglob("*"):
            if f.is_file():
                text = f.read_text(errors="replace")
                assert "test_hidden_judge" not in text
                last_assert = [ln for ln in hidden[run.name].splitlines() if "assert" in ln][-1].strip()
                assert last_assert not in text, f"{f} holds a hidden assertion"


def test_a_saved_run_prints_as_markdown_without_running_anything(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import argparse

    import bench_quality as bq

    args = argparse.Namespace(set="dev", seed=1, model="embedded", limit=None)
    done = [bq.Result(id="HumanEval/1", one_shot_pass=False, crew_pass=True, crew_report_pass=True, crew_s=50.0),
            bq.Result(id="HumanEval/2", one_shot_pass=True, crew_pass=False, crew_report_pass=True, crew_s=70.0)]
    out = tmp_path / "run.json"
    bq._save(out, bq.summarise(done, args, "abc123"), done)
    assert bq.main(["--markdown", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| pass@1 on the hidden tests | 1/2 (50.0 %) | 1/2 (50.0 %) — **+0.0 points** |" in text
    assert "| false PASS (report PASS, hidden tests fail) | — | 1/2 (50.0 %) |" in text
    assert "Crew passes where one shot fails (1): HumanEval/1." in text
    assert "One shot passes where the crew fails (1): HumanEval/2." in text
    (tmp_path / "bad.json").write_text("[]")
    assert bq.main(["--markdown", str(tmp_path / "bad.json")]) == 2


def test_the_measured_code_is_the_workflow_not_the_docs() -> None:
    import bench_quality as bq

    code = bq._commit()
    assert code.startswith("code-") or code == "unknown"
    assert {"crew", "tasks.yaml", "benchmarks/bench_quality.py"} <= set(bq.MEASURED_PATHS)
    assert not any(p.startswith(("docs", "README")) for p in bq.MEASURED_PATHS)


def test_without_examples_the_crew_finds_none_and_the_hidden_test_is_unchanged() -> None:
    import bench_quality as bq
    import no_examples

    from crew.answers.task import ParsedTask

    full = {t.id: t for t in bq.humaneval_tasks(bq.DEV)}
    bare = bq.humaneval_tasks(bq.DEV, without_examples=True)
    assert 70 <= len(bare) <= 82
    for t in bare:
        assert not ParsedTask.parse(t.prompt).examples, t.id
        assert ">>>" not in t.prompt and t.hidden == full[t.id].hidden
        # the signature stays, `-> float` and all (it was once taken for a stated result)
        assert ParsedTask.parse(t.prompt).functions == ParsedTask.parse(full[t.id].prompt).functions, t.id
    he73 = next(t for t in bare if t.id == "HumanEval/73").prompt
    assert "smallest_change([1" not in he73 and "For example" not in he73 and "palindromic" in he73
    # text that still states an example the parser sees is not used
    assert no_examples.strip('def f(x):\n    """Twice x: f(2) is 4, as in `f(2) == 4`."""', "g") is None
    own = {t.id for t in bq.select("own", None, 0, without_examples=True)}
    assert "own/slugify" in own and "own/roman" not in own


def test_workflow_overrides_reach_the_scratch_project(tmp_path: Path) -> None:
    import bench_quality as bq
    import yaml

    assert bq.overrides(["assumed_examples=3", "consensus_samples = 0"]) == {"assumed_examples": 3,
                                                                             "consensus_samples": 0}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        bq.overrides(["assumed_examples"])
    project = bq.scratch_project(tmp_path, "embedded", 1, {"assumed_examples": 3})
    wf = yaml.safe_load((project / "tasks.yaml").read_text())["workflow"]
    assert wf["assumed_examples"] == 3 and wf["seed"] == 1
    r = subprocess.run([sys.executable, str(BENCH), "--workflow", "nonsense", "--set", "own", "--limit", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr and "Traceback" not in r.stderr


def test_the_one_shot_by_method_asks_each_empty_method_and_assembles_the_class() -> None:
    import bench_quality as bq

    from crew.serving.process import free_port
    from tests.fake_ollama import FakeOllama
    from tests.test_by_method import TASK

    whole = ("```python\nclass Counter:\n    def add(self, k):\n        self.n += k\n        return self.n\n\n"
             "    def reset(self):\n        self.n = 0\n        return 0\n```")
    with FakeOllama(reply=whole).start("127.0.0.1", free_port(12986)) as api:
        api.add_model("bench", 1)
        task = bq.Task(id="own/counter", module="counter.py", prompt=TASK, hidden="")
        files, _tokens, seconds = bq.one_shot_by_method(api.base_url, task, seed=1)
        asked = api.bodies("/v1/chat/completions")
    assert len(asked) == 2 and "only the method `add`" in asked[0]["messages"][0]["content"]
    ns: dict[str, object] = {}
    exec(compile(files["counter.py"], "counter.py", "exec"), ns)  # noqa: S102 - our own fixture code
    counter = ns["Counter"]()  # type: ignore[operator]
    assert counter.add(2) == 2 and counter.reset() == 0 and seconds >= 0
