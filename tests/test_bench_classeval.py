"""ClassEval in the quality benchmark: its tasks, prompts, judging, skipped tasks and verdict kinds (no model)."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_quality as bq  # noqa: E402
import classeval as ce  # noqa: E402

DATA = ce.data_path()
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not here")


def _records() -> dict[str, dict]:
    return {"ClassEval/" + r["task_id"].split("_")[1]: r for r in ce.load(DATA)}


def _task(task_id: str) -> bq.Task:
    return next(t for t in bq.classeval_tasks(DATA) if t.id == task_id)


def _reference(task_id: str) -> str:
    return ce.reference_code(DATA)[task_id]


@needs_data
def test_the_loader_reads_the_development_split_only() -> None:
    tasks = bq.classeval_tasks(DATA)
    assert [t.id for t in tasks] == [f"ClassEval/{n}" for n in range(0, 100, 2)]
    modules = {t.id: t.module for t in tasks}
    assert modules["ClassEval/0"] == "access_gateway_filter.py"
    assert modules["ClassEval/80"] == "sql_query_builder.py"
    assert modules["ClassEval/30"] == "data_statistics2.py"
    assert modules["ClassEval/62"] == "nlp_data_processor.py"
    assert len(set(modules.values())) == 50 and not any(m.startswith("test_") for m in modules.values())
    assert _task("ClassEval/0").test_classes[-1] == "AccessGatewayFilterTest"
    picked = [t.id for t in bq.select("classeval", 5, seed=2)]
    assert picked == [t.id for t in bq.select("classeval", 5, seed=2)] and len(set(picked)) == 5


def test_a_missing_or_foreign_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    odd = tmp_path / "odd.json"
    rec = {"task_id": "ClassEval_1", "class_name": "A", "skeleton": "", "test": "", "import_statement": [],
           "test_classes": []}
    odd.write_text(json.dumps([rec]))
    with pytest.raises(ValueError, match="reserved"):
        ce.load(odd)
    (tmp_path / "bad.json").write_text(json.dumps([{"task_id": "ClassEval_0"}]))
    for path in (tmp_path / "none.json", tmp_path / "bad.json", odd):
        assert bq.main(["--set", "classeval", "--classeval", str(path), "--check-reference"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("bench_quality: ") and err.count("\n") == 1


@needs_data
def test_the_prompt_holds_the_skeleton_and_never_the_solution() -> None:
    records = _records()
    for task in bq.classeval_tasks(DATA):
        rec = records[task.id]
        assert rec["skeleton"].strip() in task.prompt and f"`{rec['class_name']}`" in task.prompt
        assert task.prompt.startswith(f"Write {task.module} with the class")
        own = [ln.strip() for ln in rec["solution_code"].splitlines()
               if len(ln.strip()) > 25 and ln.strip() not in rec["skeleton"]]
        assert own, task.id  # a distinctive line of the solution, to look for
        assert not [ln for ln in own if ln in task.prompt], task.id
        assert "def test_" not in task.prompt and "unittest" not in task.prompt


def test_only_the_reference_check_reads_a_reference_solution() -> None:
    bench = ast.parse((ROOT / "benchmarks" / "bench_quality.py").read_text())
    literals = {n.value for n in ast.walk(bench) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert "solution_code" not in literals and "canonical_solution" not in literals
    tree = ast.parse((ROOT / "benchmarks" / "classeval.py").read_text())
    readers = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               and any(isinstance(n, ast.Constant) and n.value == "solution_code" for n in ast.walk(f))}
    assert readers == {"reference_code"}
    calls = [n for n in ast.walk(bench) if isinstance(n, ast.Attribute) and n.attr == "reference_code"]
    assert len(calls) == 1  # in bench_quality.reference_fails, the reference check


@needs_data
def test_the_hidden_test_is_the_authors_file() -> None:
    task, rec = _task("ClassEval/0"), _records()["ClassEval/0"]
    assert task.hidden.startswith("import logging\nimport datetime\nfrom access_gateway_filter import *\n")
    assert rec["test"].strip() in task.hidden
    assert set(ce.test_methods(task.hidden)) == set(task.test_classes)


@needs_data
@pytest.mark.parametrize("task_id", ["ClassEval/16", "ClassEval/66"])
def test_the_judge_passes_a_reference_solution(task_id: str) -> None:
    task = _task(task_id)
    j = bq.judge({task.module: _reference(task_id)}, task)
    assert j.ok and j.methods == 1.0 and not j.first_error, j.why


@needs_data
def test_the_judge_fails_the_skeleton_itself() -> None:
    task, rec = _task("ClassEval/8"), _records()["ClassEval/8"]
    j = bq.judge({task.module: rec["skeleton"]}, task)
    assert not j.ok and j.methods == 0.0 and j.first_error


@needs_data
def test_one_broken_method_gives_a_share_between_0_and_1() -> None:
    task = _task("ClassEval/8")  # BankAccount: deposit, withdraw, view_balance, transfer
    tree = ast.parse(_reference("ClassEval/8"))
    broken = next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "transfer")
    broken.body = ast.parse("raise NotImplementedError").body
    j = bq.judge({task.module: ast.unparse(tree)}, task)
    assert not j.ok and 0.0 < j.methods < 1.0, (j.why, j.methods)


def test_the_method_share_counts_a_class_only_when_each_of_its_tests_passed() -> None:
    hidden = ("import unittest\nclass A(unittest.TestCase):\n    def test_1(self): pass\n    def test_2(self): pass\n"
              "class B(unittest.TestCase):\n    def test_1(self): pass\n")
    f = ce.HIDDEN_FILE
    assert ce.method_share([f"{f}::A::test_1", f"{f}::A::test_2", f"{f}::B::test_1"], hidden, ("A", "B")) == 1.0
    assert ce.method_share([f"{f}::A::test_1", f"{f}::B::test_1"], hidden, ("A", "B")) == 0.5  # A::test_2 not run
    assert ce.method_share([], hidden, ("A", "B")) == 0.0
    assert ce.method_share([f"{f}::B::test_1"], hidden, ()) == 0.0  # not a ClassEval task


def test_a_task_importing_a_missing_package_is_skipped() -> None:
    rec = {"task_id": "ClassEval_200", "class_name": "Fake", "import_statement": ["import json"],
           "skeleton": "import surely_not_a_package_here.sub\nfrom collections import deque\n\nclass Fake:\n"
                       "    def f(self):\n        \"\"\"doc\"\"\"\n",
           "test": "import unittest\nimport numpy as np\n", "test_classes": ["FakeTest"]}
    fake = ce.task(rec)
    assert fake.packages == ("json", "surely_not_a_package_here", "collections", "unittest", "numpy")
    assert ce.missing_packages(fake) == ["surely_not_a_package_here"]
    plain = ce.task({**rec, "task_id": "ClassEval_202", "skeleton": "class Fake:\n    pass\n"})
    assert ce.skipped([fake, plain], {}) == [
        {"id": "ClassEval/200", "why": "not installed here: surely_not_a_package_here"}]
    assert ce.skipped([plain], {"ClassEval/202": "1 failed"}) == [
        {"id": "ClassEval/202", "why": "the reference solution fails here: 1 failed"}]


def test_the_verdict_kinds_are_read_from_the_report(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    log.write_text('{"event": "report", "ok": false, "verdict": "fail-disputed"}\n'
                   '{"event": "usage", "agents": [{"prompt_tokens": 5, "completion_tokens": 2}]}\n')
    assert bq.read_log(log) == (False, "fail-disputed", 7)
    log.write_text('{"event": "report", "ok": true}\n')  # a report from before verdict kinds
    assert bq.read_log(log) == (True, "pass", 0)
    assert bq.read_log(tmp_path / "none.jsonl") == (None, "none", 0)


def test_the_summary_counts_each_kind_of_verdict() -> None:
    def r(i: int, kind: str, hidden: bool, methods: float = 0.0) -> bq.Result:
        return bq.Result(id=f"ClassEval/{i}", crew_verdict=kind, crew_pass=hidden,
                         crew_report_pass=kind.startswith("pass"), crew_methods=methods, one_shot_methods=0.5)

    results = [r(0, "pass-examples", True, 1.0), r(2, "pass-examples", False, 0.5), r(4, "pass-model-tests", False),
               r(6, "fail-examples", True, 1.0), r(8, "fail-model-tests", False), r(10, "fail-disputed", True, 1.0),
               r(12, "fail-disputed", False), r(14, "fail-disputed", False), r(16, "not-tested", False),
               bq.Result(id="ClassEval/18", crew_report_pass=True, crew_pass=True, crew_methods=1.0),  # older result
               r(20, "pass-unreproduced", False), r(22, "pass-unsettled", True)]
    args = argparse.Namespace(set="classeval", seed=0, model="embedded", limit=None)
    skipped = [{"id": "ClassEval/28", "why": "not installed here: pandas"}]
    s = bq.summarise(results, args, "abc", skipped)
    c = s["crew"]
    assert (c["false_pass"], c["false_fail"]) == (3, 1)  # fail-disputed is not a false FAIL
    assert c["false_pass_plain"] == 2  # the pass-unreproduced one said what it was not sure of
    assert c["unsure"] == {"tasks": 3, "hidden_pass": 1}
    assert c["methods_mean"] == pytest.approx(4.5 / 12) and s["one_shot"]["methods_mean"] == pytest.approx(5.5 / 12)
    rows = {row["kind"]: row for row in s["verdicts"]}
    assert [row["kind"] for row in s["verdicts"]] == ["pass-examples", "pass-model-tests", "pass-unsettled",
                                                       "pass-unreproduced", "pass", "fail-examples",
                                                       "fail-model-tests", "fail-disputed", "not-tested"]
    assert rows["pass-examples"] == {"kind": "pass-examples", "tasks": 2, "share": 2 / 12, "hidden_pass": 1,
                                     "false_pass": 1}
    assert rows["pass-unreproduced"]["false_pass"] == 1 and rows["pass-unsettled"]["false_pass"] == 0
    assert rows["fail-examples"]["false_fail"] == 1 and rows["fail-model-tests"]["false_fail"] == 0
    assert "false_pass" not in rows["fail-disputed"] and "false_fail" not in rows["fail-disputed"]
    assert rows["pass"]["false_pass"] == 0 and s["skipped"] == skipped
    text = bq.render(s)
    assert "method level (test classes)" in text and "37.5 %" in text and "of which plain (no hedge)" in text
    assert "hidden pass 1 of 3 (unsure: not a false FAIL)" in text
    assert "skipped, not counted: ClassEval/28 (not installed here: pandas)" in text
    md = bq.render_markdown(s, results)
    assert "| pass-examples | 2 (16.7 %) | 1 | false PASS 1 |" in md
    assert "| fail-disputed | 3 (25.0 %) | 1 | hidden pass 1 of 3 (unsure: not a false FAIL) |" in md
    assert "| method level (share of test classes passing, mean) | 45.8 % | 37.5 % |" in md
    assert "| … of which a plain PASS (no hedge in the report) | — | 2/12 (16.7 %) |" in md
    assert "Skipped, not counted (1): ClassEval/28 (not installed here: pandas)." in md


def test_a_result_saved_before_these_fields_still_loads() -> None:
    old = {"id": "HumanEval/1", "one_shot_pass": True, "one_shot_s": 1.0, "one_shot_tokens": 3, "crew_pass": True,
           "crew_report_pass": False, "crew_s": 2.0, "crew_tokens": 4, "crew_exit": 0, "load_avg_1m": 0.5,
           "notes": []}
    r = bq.Result(**old)
    assert (r.crew_verdict, r.crew_methods, r.one_shot_methods) == ("", 0.0, 0.0)
    s = bq.summarise([r], argparse.Namespace(set="dev", seed=0, model="embedded", limit=None))
    assert s["crew"]["false_fail"] == 1 and "methods_mean" not in s["crew"]
    assert "method level" not in bq.render(s)
