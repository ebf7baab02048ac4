"""The verdict's kind (crew/run/verdict.py): pure, from the final round and independent attempts' runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from crew.answers.examples import EXAMPLES_FILE
from crew.run.verdict import KINDS, AttemptRun, classify
from crew.sandbox import TestFailure, TestReport
from tests.conftest import ROOT


def _report(passed: list[str], failed: dict[str, str], *, import_errors: tuple[str, ...] = ()) -> TestReport:
    failures = tuple(TestFailure(name=n, message=m, traceback="") for n, m in failed.items())
    return TestReport(collected=len(passed) + len(failed), passed=len(passed), failed=len(failed), errors=0,
                      skipped=0, failures=failures,
                      timed_out=False, exit_code=1 if failed or import_errors else 0, output="", duration_s=0.1,
                      network_isolated=True, import_errors=import_errors, passed_ids=tuple(passed))


EX = f"{EXAMPLES_FILE}::test_example_1"
M1, M2 = "test_m.py::test_one", "test_m.py::test_two"


def test_pass_with_the_users_examples_is_confirmed() -> None:
    v = classify(_report([EX, M1], {}), 1, [])
    assert v.kind == "pass-examples" and v.ok and v.strict_exit() == 0
    assert "confirmed by your own examples" in v.headline()


def test_pass_without_an_example_says_so_and_counts_agreeing_attempts() -> None:
    runs = [AttemptRun(usable=True, ok=True), AttemptRun(usable=True, ok=False, failing={M1: "assert 1 == 2"})]
    v = classify(_report([M1, M2], {}), 0, runs)
    assert v.kind == "pass-model-tests" and v.ok and (v.attempts, v.agreeing) == (2, 1)
    assert "no example" in v.headline() and "1 of 2 independent attempt(s)" in v.headline()


def test_a_pass_that_attempts_alike_on_the_tests_contradict_elsewhere_is_not_settled() -> None:
    line = "`f([4.0, 5.0, 2.2])`: the code returns (2.2, 5.0); another attempt returns (4.0, 5.0)"
    v = classify(_report([EX, M1], {}), 1, [], (line,))
    assert v.kind == "pass-unsettled" and v.ok and v.strict_exit() == 0 and v.unsettled == (line,)
    assert v.headline().startswith("PASS, not settled — your 1 example(s) pass, but independent attempts")
    assert f"- not settled {line}" in v.lines()
    # a FAIL stays what it is: the unsettled inputs matter only to a PASS
    assert classify(_report([M1], {EX: "assert 1 == 2"}), 1, [], (line,)).kind == "fail-examples"


def test_a_pass_no_other_attempt_reproduces_says_so() -> None:
    why = "none of 3 other independent attempts behaves like the code (3 fail the user's examples)"
    v = classify(_report([EX, M1], {}), 1, [], (), why)
    assert v.kind == "pass-unreproduced" and v.ok and v.strict_exit() == 0 and v.alone == why
    assert v.headline().startswith(f"PASS, not reproduced — your 1 example(s) pass, but {why}: what no test shows")
    assert f"- not reproduced: {why}" in v.lines()
    assert classify(_report([M1], {}), 0, [], (), why).headline().startswith(
        "PASS, not reproduced — the model-written tests pass, but none of 3")
    # a FAIL stays what it is
    assert classify(_report([M1], {EX: "assert 1 == 2"}), 1, [], (), why).kind == "fail-examples"


def test_a_pass_the_attempts_split_on_lists_the_calls_and_yields_to_stronger_doubts() -> None:
    line = "`top_words('a, b! a', 1)`: the code returns [('a,', 1)]; another attempt returns [('a', 2)]"
    v = classify(_report([EX, M1], {}), 1, [], (), "", (line,))
    assert v.kind == "pass-split" and v.ok and v.strict_exit() == 0 and v.split == (line,)
    assert v.headline().startswith("PASS, split — your 1 example(s) pass, but the independent attempts split")
    assert f"- split {line}" in v.lines()
    assert classify(_report([M1], {}), 0, [], (), "", (line,)).headline().startswith(
        "PASS, split — the model-written tests pass")
    # not settled, or not reproduced at all, says more; and a FAIL stays what it is
    assert classify(_report([EX, M1], {}), 1, [], ("`f(1)`: …",), "", (line,)).kind == "pass-unsettled"
    assert classify(_report([EX, M1], {}), 1, [], (), "none of 3 …", (line,)).kind == "pass-unreproduced"
    assert classify(_report([M1], {EX: "assert 1 == 2"}), 1, [], (), "", (line,)).kind == "fail-examples"


def test_a_failing_user_example_is_a_plain_fail_whatever_the_attempts_say() -> None:
    runs = [AttemptRun(usable=True, ok=False, failing={EX: "x"})] * 3
    v = classify(_report([M1], {EX: "assert 'a' == 'b'"}), 1, runs)
    assert v.kind == "fail-examples" and not v.ok and v.strict_exit() == 3


def test_only_model_tests_failing_on_code_and_on_every_attempt_is_disputed() -> None:
    runs = [AttemptRun(usable=True, ok=False, failing={M1: "assert [] == [2]"}),
            AttemptRun(usable=True, ok=False, failing={M1: "assert [] == [2]", M2: "boom"})]
    v = classify(_report([EX, M2], {M1: "assert [] == [2]\n more"}), 1, runs)
    assert v.kind == "fail-disputed" and not v.ok
    assert v.strict_exit() == 0  # the user's examples pass and every attempt sides with the code
    (d,) = v.disputed
    assert d.test == M1 and d.code == "assert [] == [2]" and d.attempts == ("assert [] == [2]", "assert [] == [2]")
    assert any("disputed `test_m.py::test_one`" in line for line in v.lines())
    # Without an example of the user's, nothing the user wrote sides with the code: --strict still fails.
    assert classify(_report([M2], {M1: "assert [] == [2]"}), 0, runs).strict_exit() == 3


def test_attempts_that_fail_a_test_another_way_do_not_side_with_the_code() -> None:
    runs = [AttemptRun(usable=True, ok=False, failing={M1: "KeyError: 'courses'"}),
            AttemptRun(usable=True, ok=False, failing={M1: "assert 97.0 == 93.0"})]
    v = classify(_report([EX], {M1: "assert 97.0 == 93.0"}), 1, runs)
    assert v.kind == "fail-model-tests" and v.undisputed == (M1,)
    same = [AttemptRun(usable=True, ok=False, failing={M1: "assert <A object at 0x…> == 1"})] * 2
    v = classify(_report([EX], {M1: "assert <A object at 0x7f12ab> == 1"}), 1, same)
    assert v.kind == "fail-disputed"  # object addresses differ between runs: blanked before comparing


def test_a_failing_model_test_that_some_attempt_passes_is_not_disputed() -> None:
    runs = [AttemptRun(usable=True, ok=False, failing={M1: "x"}), AttemptRun(usable=True, ok=True)]
    v = classify(_report([EX], {M1: "assert 1 == 2"}), 1, runs)
    assert v.kind == "fail-model-tests" and v.undisputed == (M1,) and v.strict_exit() == 3


def test_one_attempt_or_unusable_attempts_cannot_dispute() -> None:
    one = [AttemptRun(usable=True, ok=False, failing={M1: "x"})]
    assert classify(_report([EX], {M1: "y"}), 1, one).kind == "fail-model-tests"
    unusable = [AttemptRun(usable=False, ok=False, failing={M1: "x"})] * 3
    v = classify(_report([EX], {M1: "y"}), 1, unusable)
    assert v.kind == "fail-model-tests" and v.attempts == 0


def test_code_that_does_not_import_fails_on_the_examples() -> None:
    v = classify(_report([], {}, import_errors=("SyntaxError",)), 2, [AttemptRun(usable=True, ok=True)] * 2)
    assert v.kind == "fail-examples"
    v = classify(_report([], {}, import_errors=("SyntaxError: invalid syntax (he2.py, line 3)",)), 0, [])
    assert v.kind == "fail-model-tests" and v.strict_exit() == 3
    # no test judged it: the headline says why, not "0 model-written tests fail"
    assert v.headline().startswith("FAIL — the module does not import (SyntaxError: invalid syntax (he2.py")


def test_no_round_is_not_tested_and_every_kind_has_a_headline() -> None:
    assert classify(None, 0, []).kind == "not-tested"
    assert set(KINDS) == {"pass-examples", "pass-model-tests", "pass-unsettled", "pass-unreproduced", "pass-split",
                          "fail-examples", "fail-model-tests", "fail-disputed", "not-tested"}


def test_the_replay_gives_kept_runs_todays_split_kind_and_nothing_else(tmp_path: Path, capsys: Any) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import verdict_replay as vr

    def run(name: str, *records: dict[str, Any]) -> None:
        (tmp_path / "keep" / name).mkdir(parents=True)
        (tmp_path / "keep" / name / "run.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")

    halves = {"event": "consensus", "calls": ["f(1)"], "results": [["value 1"], ["value 2"], ["value 1"], ["value 2"]],
              "usable": [True] * 4, "tests_passed": [1, 1, 1, 1], "chosen": 0, "cluster": [0, 2], "rivals": []}
    run("own-split", halves, {"event": "verdict", "kind": "pass-examples"})
    run("own-fixed", halves, {"event": "task_started", "task": "fix_code"},
        {"event": "verdict", "kind": "pass-examples"})
    run("own-fail", halves, {"event": "verdict", "kind": "fail-model-tests"})
    run("own-most", {**halves, "results": [["value 1"]] * 3 + [["value 2"]], "cluster": [0, 1, 2]},
        {"event": "verdict", "kind": "pass-examples"})
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"tasks": [{"id": f"own/{n}", "crew_pass": False}
                                             for n in ("split", "fixed", "fail", "most", "missing")]}))
    assert vr.main([str(results), str(tmp_path / "keep")]) == 0
    out = capsys.readouterr().out
    assert "changed:\n  own/split: pass-examples → pass-split (hidden tests fail)\n" in out
    assert out.count("→") == 1       # a fix round made the consensus stale; a FAIL and a majority stay
    assert "false PASS 3, of which plain (no hedge) 3" in out and "false PASS 3, of which plain (no hedge) 2" in out
    assert vr.main([str(results)]) == 2
