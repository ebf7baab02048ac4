"""Examples the crew assumes when the task states none (issue #26 item 2): parsing, agreement, the workflow."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from crew.answers import assumed
from crew.answers.examples import Example, render_tests
from crew.config import load_project
from crew.errors import ConfigError
from crew.run.workflow import execute, open_state, run_inputs, usage_of, write_report
from tests.fake_llm import ScriptedLLM
from tests.test_workflow import DOCS, GOOD, GOOD_TOO
from tests.test_workflow import TESTS as WORKFLOW_TESTS

NO_EXAMPLE = "Write slugify_tool.py with `slugify(text)` that lowercases text and joins words with hyphens."
MANAGER = '''```python
assert slugify("Hello World") == "hello-world"
assert slugify("a  b") == "a--b"
assert slugify("") == ""
```'''
# test_workflow's tests, one of them contradicting an example the attempts confirm ("Hello-World")
TESTS = (WORKFLOW_TESTS.replace("def test_spaces", "def test_caps").replace('== "hello-world"', '== "Hello-World"')
         .replace("def test_strip", "def test_spaces").replace('slugify("  Hi!  ") == "hi"', 'slugify("x y") == "x-y"'))


def _ex(call: str, expected: str) -> Example:
    return Example(call=call, function=call.split("(")[0], expected=expected, kind="equals", source=call)


# ------------------------------------------------------------------------------------------ pure


def test_the_request_names_the_functions_and_the_answer_format() -> None:
    text = assumed.request("Write f.py with `f(x)`.", ["f", "g"], 3)
    assert text.startswith("Write f.py with `f(x)`.") and "`f`, `g`" in text and "exactly 3 lines" in text
    assert "assert f(<arguments>) == <the value it returns>" in text


def test_parse_keeps_calls_of_the_tasks_functions_once_and_drops_a_call_given_two_values() -> None:
    answer = ('assert f(1) == 2\nassert f(1) == 2\nassert g(0) == 0\nassert f(2) == 3\nassert f(2) == 4\n'
              'assert f(3) == 9\nassert f(4) == 16\n')
    got = assumed.parse(answer, ["f"], 2)
    assert [(e.call, e.expected) for e in got] == [("f(1)", "2"), ("f(3)", "9")]
    assert assumed.parse("no examples here", ["f"], 3) == []


def test_an_assumed_example_is_kept_only_when_two_attempts_and_a_majority_agree() -> None:
    e = _ex("f(1)", "2")
    assert assumed.check(e, [True, True, False], ["value 2", "value 2", "value 3"]).accepted
    assert not assumed.check(e, [True], ["value 2"]).accepted                 # one attempt is no agreement
    assert not assumed.check(e, [True, True, False, False], [None] * 4).accepted  # a split vote is not either
    c = assumed.check(e, [False, False, True], ["value 3", "raises ValueError", "value 2"])
    assert not c.accepted and c.returned == ("value 3", "raises ValueError")
    assert "1 of 3 attempts agree — not used (the others: raises ValueError; value 3)" in c.line()
    assert "joined the tests" in assumed.check(e, [True, True], ["value 2"] * 2).line()
    assert "no usable attempt" in assumed.check(e, [], []).line()


def test_the_assumed_file_says_whose_examples_they_are() -> None:
    text = render_tests("m", [_ex("f(1)", "2")], assumed=True)
    assert "assumed by the crew" in text and "not the user's" in text and "assert f(1) == 2" in text
    assert "from the task" not in text


# ------------------------------------------------------------------------------------------ the workflow


def _run(project_dir: Path, *, n: int, task: str = NO_EXAMPLE, dev: list[str] | None = None):  # type: ignore[no-untyped-def]
    project = load_project(project_dir)
    wf = replace(project.tasks.workflow, consensus_samples=0, assumed_examples=n)
    project = replace(project, tasks=replace(project.tasks, workflow=wf))
    script = {"specify": ["Module slugify_tool.py with slugify(text)."], "implement": [GOOD],
              "write_tests": [TESTS], "fix_code": [GOOD], "document": [DOCS], "report": ["We built slugify."],
              "?": dev or [GOOD_TOO, GOOD_TOO]}
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=script) for name in project.agents}
    llms["manager"] = ScriptedLLM(model="scripted-manager", script={**script, "?": [MANAGER]})
    inputs = run_inputs(project, task=task, module="slugify_tool.py")
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    messages: list[str] = []
    state = open_state(project, run_dir, inputs, messages.append)
    crew = execute(project, llms, state, inputs)
    report = write_report(project, crew, state, inputs, usage_of(llms, {}), [])
    return state, report.read_text(), llms, messages


def test_assumed_examples_the_attempts_agree_with_join_the_tests_and_overrule_a_model_test(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, n=3)
    asked = [text for (t, text) in llms["manager"].seen if t == "?"]
    assert len(asked) == 1 and "gives no example" in asked[0]
    # the code plus two attempts asked for the purpose: "a  b" → "a--b" is the manager's misreading, not kept
    assert len([t for (t, _) in llms["developer"].seen if t == "?"]) == 2
    (checked,) = state.log.of("assumed_checked")
    assert checked["agreeing"] == [3, 0, 3] and checked["attempts"] == 3
    assert checked["accepted"] == ["slugify('Hello World')", "slugify('')"]
    kept = (state.code_dir / assumed.ASSUMED_FILE).read_text()
    assert "slugify('Hello World') == 'hello-world'" in kept and "a--b" not in kept
    # the tester's test asserting "Hello-World" contradicts a confirmed example: dropped, as for the user's
    assert checked["dropped_tests"] == ["test_slugify_tool.py::test_caps"]
    assert "test_caps" not in (state.code_dir / "test_slugify_tool.py").read_text()
    assert state.rounds[-1].ok and state.rounds[-1].passed == 3  # test_spaces + 2 assumed examples
    assert "examples assumed by the crew (the manager's reading of the task, not the user's): 2 of 3" in report
    assert "`slugify('a  b') == 'a--b'`: 0 of 3 attempts agree — not used (the others: value 'a-b')" in report
    # still the crew's reading, not the user's: the verdict does not claim the user's examples
    assert state.log.of("verdict")[0]["kind"] == "pass-model-tests"


def test_confirmed_assumed_examples_make_attempts_credible_voters_against_a_wrong_model_test(
        project_dir: Path) -> None:
    global TESTS
    saved, TESTS = TESTS, TESTS[:-3] + '\n\ndef test_wrong():\n    assert slugify("a b") == "a_b"\n```'
    try:
        state, report, llms, _ = _run(project_dir, n=3)
    finally:
        TESTS = saved
    # two attempts check the examples, then vote (no new request): each passes the confirmed examples and
    # fails test_wrong
    assert len([t for (t, _) in llms["developer"].seen if t == "?"]) == 2
    assert [r["reused"] for r in state.log.of("second_opinion")] == [True, True]
    dropped = [c for r in state.log.of("tests_repaired") for c in r["changes"] if "test_wrong" in c]
    assert dropped and "pass the examples the crew assumed and confirmed" in dropped[0]
    assert state.rounds[-1].ok and state.log.of("verdict")[0]["kind"] == "pass-model-tests"


def test_without_confirmed_examples_a_task_without_example_has_no_vote(project_dir: Path) -> None:
    global TESTS, MANAGER
    saved, TESTS = TESTS, TESTS[:-3] + '\n\ndef test_wrong():\n    assert slugify("a b") == "a_b"\n```'
    saved_m, MANAGER = MANAGER, '```python\nassert slugify("a b") == "a b"\n```'  # no attempt agrees
    try:
        state, report, llms, _ = _run(project_dir, n=3)
    finally:
        TESTS, MANAGER = saved, saved_m
    assert state.log.of("assumed_checked")[0]["accepted"] == [] and not state.log.of("second_opinion")
    assert "test_wrong" in (state.code_dir / "test_slugify_tool.py").read_text()


def test_no_request_when_off_or_when_the_task_gives_an_example(project_dir: Path) -> None:
    state, _, llms, _ = _run(project_dir, n=0)
    assert not [t for (t, _) in llms["manager"].seen if t == "?"] and not state.log.of("assumed_checked")
    assert not (state.code_dir / assumed.ASSUMED_FILE).exists()
    with_example = NO_EXAMPLE + ' For example slugify("Hello, World!") returns "hello-world".'
    _copy(project_dir)
    state, _, llms, _ = _run(project_dir / "again", n=3, task=with_example)
    assert not [t for (t, _) in llms["manager"].seen if t == "?"]


def test_an_answer_without_examples_is_asked_once_more_then_the_run_goes_on_without(project_dir: Path) -> None:
    global MANAGER
    saved, MANAGER = MANAGER, "I cannot think of any."
    try:
        state, report, llms, messages = _run(project_dir, n=3)
    finally:
        MANAGER = saved
    asked = [text for (t, text) in llms["manager"].seen if t == "?"]
    assert len(asked) == 2 and "Do not write the code" in asked[1]
    assert state.log.of("assumed_examples")[0]["examples"] == [] and not state.log.of("assumed_checked")
    assert any("held no usable example" in m for m in messages) and "examples assumed" not in report


def test_a_model_file_named_like_the_assumed_file_is_the_testers_own_file(project_dir: Path) -> None:
    state, _, _, _ = _run(project_dir, n=0)
    from crew.answers.codeblocks import CodeFile

    assert state.tests_only(CodeFile(path=assumed.ASSUMED_FILE, content="x")).path == state.test_file


def test_the_knob_is_checked(project_dir: Path) -> None:
    path = project_dir / "tasks.yaml"
    path.write_text(path.read_text().replace("workflow:\n", "workflow:\n  assumed_examples: 99\n", 1))
    with pytest.raises(ConfigError) as err:
        load_project(project_dir)
    assert "assumed_examples" in err.value.one_line()


def _copy(project_dir: Path) -> None:
    import shutil

    target = project_dir / "again"
    target.mkdir()
    for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
        shutil.copy(project_dir / name, target / name)
