"""The workflow's logic with a scripted LLM: real crewai crew, real files, real pytest runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crew.config import load_project
from crew.run.workflow import execute, open_state, run_inputs, usage_of, write_report
from tests.fake_llm import ScriptedLLM

GOOD = '''```python
# file: slugify_tool.py
import re


def slugify(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
```'''
BAD = GOOD.replace('.strip("-")', "")
TESTS = '''```python
# file: test_slugify_tool.py
from slugify_tool import slugify


def test_spaces():
    assert slugify("Hello World") == "hello-world"


def test_strip():
    assert slugify("  Hi!  ") == "hi"
```'''
DOCS = "```markdown\n<!-- file: README.md -->\n# slugify_tool\n\nTurns text into slugs.\n```"


def _run(project_dir: Path, dev_replies: list[str], fix_replies: list[str]):  # type: ignore[no-untyped-def]
    # The developer's first answer comes through CrewAI; its later attempts are asked of its model directly
    # (state.draft), which the scripted LLM answers under the task name "?".
    return _run_with(project_dir, load_project(project_dir),
                     {"implement": dev_replies[:1], "?": dev_replies[1:] or ["(no script)"], "fix_code": fix_replies})


def _prompts(llms, task: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [text for llm in llms.values() for (t, text) in llm.seen if t == task]


# Passes the task's own example (`slugify("Hello, World!")` returns "hello-world") but not test_strip.
HALF = GOOD.replace('.strip("-")', '.rstrip("-")')
CODE_SPEC = "```python\ndef slugify(text):\n    import re\n    return text\n```"


def test_pass_first_time(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, [GOOD], ["should not be asked"])
    # round 1: the module against the task's own example; round 2: everything after the tests are written
    assert [r.ok for r in state.rounds] == [True, True]
    assert state.rounds[1].passed == 3 and state.rounds[1].collected == 3  # 1 user example + 2 model-written
    assert _prompts(llms, "fix_code") == []  # skipped: the tests passed
    assert "**Verdict:** PASS — confirmed by your own examples (your 1 example(s) pass); 3 passed" in report
    assert "- kind: `pass-examples`" in report and state.log.of("verdict")[0]["kind"] == "pass-examples"
    assert (state.code_dir / "slugify_tool.py").exists() and (state.code_dir / "README.md").exists()
    events = [r["event"] for r in state.log.records()]
    assert events.count("tests") == 2 and "task_done" in events


def test_the_users_examples_become_tests_written_by_the_system(project_dir: Path) -> None:
    state, report, _, _ = _run(project_dir, [GOOD], ["should not be asked"])
    text = (state.code_dir / "test_examples.py").read_text()
    assert "not by a model" in text and "assert slugify('Hello, World!') == 'hello-world'" in text
    assert state.written["test_examples.py"] == "system"
    assert "user examples 1/1, model-written 2/2" in report


def test_code_failing_the_users_example_is_revised_before_any_test_is_written(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, [BAD, GOOD], ["should not be asked"])
    assert [r.ok for r in state.rounds] == [False, True, True]
    assert len(_prompts(llms, "implement")) == 1  # the retry is asked of the model directly, not through CrewAI
    retry = _prompts(llms, "?")[0]
    from crew.run.drafter import DRAFT_SUFFIX

    task = SLUGIFY_TASK
    assert retry == task + DRAFT_SUFFIX  # the first retry is exactly what one shot is asked
    assert "_pytest" not in retry  # pytest's own frames are not shown to the model
    assert "**Verdict:** PASS" in report


def test_fail_then_fixed_in_a_fix_round(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, [HALF], [GOOD])
    assert [r.ok for r in state.rounds] == [True, False, True]
    assert state.rounds[1].failed == 1 and state.rounds[1].failures[0].name.endswith("test_strip")
    fix_prompt = _prompts(llms, "fix_code")[0]
    assert "test_strip" in fix_prompt and "REAL PYTEST RESULT" in fix_prompt  # the real failure reached the dev
    assert "**Verdict:** PASS" in report


def test_still_failing_after_the_last_round_is_reported_honestly(project_dir: Path) -> None:
    worse = GOOD.replace('.strip("-")', '.strip("-") + "!"')
    state, report, llms, messages = _run(project_dir, [HALF], [worse])
    # the fix round made things worse: the loop stops, the best code (round 1's) is put back and re-tested
    assert [r.ok for r in state.rounds] == [True, False, False, False]
    assert len(_prompts(llms, "fix_code")) == 1
    assert (state.code_dir / "slugify_tool.py").read_text() == HALF.split("\n", 2)[2].rsplit("```", 1)[0]
    assert state.rounds[-1].failed == 1  # the restored code fails only test_strip, as in round 2
    assert "**Verdict:** FAIL" in report
    assert any("made no progress" in m for m in messages) and any("keeping the code of round" in m for m in messages)


def test_fix_rounds_are_bounded(project_dir: Path) -> None:
    def code(body: str) -> str:
        return f"```python\n# file: slugify_tool.py\ndef slugify(text):\n    {body}\n```"

    both_fail = code('return "hello-world" if "World!" in text else "nope"')  # only the user's example holds
    one_fails = code('return "hello-world" if "World" in text else "nope"')   # test_spaces holds too
    state, report, llms, _ = _run(project_dir, [both_fail], [one_fails, both_fail, GOOD])
    assert len(_prompts(llms, "fix_code")) == 2  # max_fix_rounds = 2, though round 1 made progress
    assert "The tests still fail" in _prompts(llms, "fix_code")[1]
    assert "**Verdict:** FAIL" in report
    # round 2 of the fix loop was worse than round 1: round 1's code is what the run delivers
    assert "World\" in" in (state.code_dir / "slugify_tool.py").read_text().replace('"World"', 'World" in')


def test_no_code_block_asks_again_then_gives_up(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, ["I cannot write code.", "Still no code.", "No.", "Never."],
                                  [GOOD])
    # the developer's answer and five more attempts (implement_rounds = 6), the later ones told what was missing
    assert len(_prompts(llms, "implement")) == 1
    first, second = _prompts(llms, "?")[:2]
    assert "No file named" not in first and "No file named slugify_tool.py was found" in second
    assert [r["attempt"] for r in state.log.of("no_module")] == [1, 2, 3, 4, 5, 6]
    assert not state.rounds[0].ok  # import of the missing module fails — real pytest says so
    assert "FAIL" in report or "PASS" in report


def test_a_print_at_module_level_is_removed_before_pytest(project_dir: Path) -> None:
    noisy = GOOD.replace("```", "\nprint(slugify('A b'))\n```").replace("```\nprint", "print", 0)
    noisy = GOOD[:-3] + "\n\nprint(slugify('A b'))\nslugify('x')\n```"
    state, _, _, messages = _run(project_dir, [noisy], ["should not be asked"])
    code = (state.code_dir / "slugify_tool.py").read_text()
    assert "print(" not in code and "def slugify" in code
    assert any("ran at import" in m for m in messages)
    assert state.log.of("import_time_code_removed")[0]["lines"][0].startswith("line 8: print(")


def test_the_tester_never_sees_the_implementation(project_dir: Path) -> None:
    _, _, llms, _ = _run(project_dir, [GOOD], ["should not be asked"])
    prompt = _prompts(llms, "write_tests")[0]
    assert "re.sub" not in prompt and "Project task:" in prompt


def test_a_test_file_with_its_own_copy_of_the_function_is_rejected_then_repaired(project_dir: Path) -> None:
    pasted = TESTS.replace("from slugify_tool import slugify\n",
                           "def slugify(text):\n    return text.lower().replace(' ', '-')\n")
    project = load_project(project_dir)
    state, report, llms, messages = _run_with(project_dir, project, {"implement": [BAD.replace("BAD", "")],
                                                                     "write_tests": [pasted, pasted]})
    assert "defines `slugify` itself" in _prompts(llms, "write_tests")[1]
    tests = (state.code_dir / "test_slugify_tool.py").read_text()
    assert "def slugify" not in tests and "from slugify_tool import slugify" in tests
    assert state.log.of("tests_repaired")


def test_a_model_test_that_contradicts_the_users_example_is_dropped(project_dir: Path) -> None:
    wrong = TESTS.replace('assert slugify("Hello World") == "hello-world"',
                          'assert slugify("Hello, World!") == "hello--world"')
    project = load_project(project_dir)
    state, report, _, messages = _run_with(project_dir, project, {"write_tests": [wrong]})
    assert "test_spaces" not in (state.code_dir / "test_slugify_tool.py").read_text()
    assert "test_strip" in (state.code_dir / "test_slugify_tool.py").read_text()
    assert any("the task says 'hello-world'" in m for m in messages)
    assert state.rounds[-1].ok


def test_a_specification_that_is_code_is_replaced_by_the_task(project_dir: Path) -> None:
    project = load_project(project_dir)
    state, _, llms, _ = _run_with(project_dir, project, {"specify": [CODE_SPEC, CODE_SPEC]})
    assert len(_prompts(llms, "specify")) == 1
    assert state.log.of("spec_fallback")
    assert "The specification is the project task itself" in _prompts(llms, "implement")[0]


# The scripted answers are for this task (tasks.yaml's example until 2026-12-04), given explicitly so that
# the shipped example can change without touching these tests.
SLUGIFY_TASK = ('Write a Python module with a function `slugify(text)` that lowercases text, replaces every run '
                'of characters that are not letters or digits with a single hyphen, and strips hyphens from both '
                'ends. For example slugify("Hello, World!") returns "hello-world".')


def _run_with(project_dir: Path, project, overrides: dict[str, list[str]],  # type: ignore[no-untyped-def]
              task: str | None = SLUGIFY_TASK, consensus: int = 0):
    from dataclasses import replace

    # The consensus step asks its own attempts first, and the manager its assumed examples on a task without
    # one (tests/test_assumed_examples.py); tests of the other steps leave both out.
    project = replace(project, tasks=replace(project.tasks, workflow=replace(
        project.tasks.workflow, consensus_samples=consensus, assumed_examples=0)))
    script = {
        "specify": ["Module slugify_tool.py with slugify(text)."],
        "implement": [GOOD], "write_tests": [TESTS], "fix_code": [GOOD], "document": [DOCS],
        "report": ["We built slugify."], **overrides,
    }
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=script) for name in project.agents}
    inputs = run_inputs(project, task=task, module="slugify_tool.py" if task else None)
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    messages: list[str] = []
    state = open_state(project, run_dir, inputs, messages.append)
    crew = execute(project, llms, state, inputs)
    report = write_report(project, crew, state, inputs, usage_of(llms, {}), [])
    return state, report.read_text(), llms, messages


def test_module_is_derived_from_the_task(project_dir: Path) -> None:
    project = load_project(project_dir)
    assert run_inputs(project, task="Write `fizzbuzz(n)` returning a list", module=None)["module"] == "fizzbuzz.py"
    assert run_inputs(project, task="Create calc.py with add()", module=None)["module"] == "calc.py"
    from crew.errors import WorkflowError

    with pytest.raises(WorkflowError, match="not a Python module file name"):
        run_inputs(project, task="x", module="bad name.py")
    with pytest.raises(WorkflowError, match="would hide Python's standard module `statistics`.*stats_utils"):
        run_inputs(project, task="Write statistics.py with mean(xs)", module=None)


def test_an_answer_that_only_repeats_the_signature_is_asked_again_without_a_test_round(project_dir: Path) -> None:
    stub = '```python\n# file: slugify_tool.py\ndef slugify(text):\n    """Make a slug."""\n```'
    state, report, llms, messages = _run(project_dir, [stub, GOOD], ["should not be asked"])
    assert "write the complete body" not in _prompts(llms, "?")[0]  # the one-shot request, as it is
    assert [r.ok for r in state.rounds] == [True, True]  # the stub cost no pytest round
    assert state.log.of("stub_answer")[0]["functions"] == ["slugify"]
    assert "**Verdict:** PASS" in report


def test_the_manager_and_the_tester_see_the_tasks_code_block_in_words(project_dir: Path) -> None:
    task = ('Write slugify_tool.py with the function `slugify` below.\n\n```python\ndef slugify(text: str) -> str:\n'
            '    """Lowercase, runs of other characters become one hyphen.\n    >>> slugify("Hello, World!")\n'
            '    \'hello-world\'\n    """\n```')
    _, report, llms, _ = _run_with(project_dir, load_project(project_dir), {}, task=task)
    for step in ("specify", "write_tests"):
        prompt = _prompts(llms, step)[0]
        assert "def slugify" not in prompt and "```python\ndef" not in prompt
        assert "The function `slugify(text: str) -> str`" in prompt
        assert """`slugify("Hello, World!") == 'hello-world'`""" in prompt
    assert "from slugify_tool import slugify\n" in _prompts(llms, "write_tests")[0]  # the skeleton it fills in
    assert "def slugify(text: str) -> str:" in _prompts(llms, "implement")[0]  # the developer sees the stub
    assert "**Verdict:** PASS" in report


def test_a_model_test_of_several_asserts_is_split_so_one_wrong_value_fails_alone(project_dir: Path) -> None:
    one_test = TESTS.replace('''    assert slugify("Hello World") == "hello-world"


def test_strip():
''', '''    assert slugify("Hello World") == "hello-world"
    assert slugify("A  B") == "a--b"
''')
    state, report, _, _ = _run_with(project_dir / "again", _project_copy(project_dir),
                                    {"implement": [GOOD], "write_tests": [one_test], "fix_code": [GOOD]})
    tests = state.rounds[1]
    assert (tests.collected, tests.failed) == (4, 1)  # the user's example + three single-assert tests
    assert tests.failures[0].name.endswith("test_spaces_2")
    assert any("split 1 test(s) into one test per assert" in c for r in state.log.of("tests_repaired")
               for c in r["changes"])
    assert "**Verdict:** FAIL" in report


def _project_copy(project_dir: Path):  # type: ignore[no-untyped-def]
    import shutil

    target = project_dir / "again"
    target.mkdir()
    for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
        shutil.copy(project_dir / name, target / name)
    return load_project(target)


WRONG_TEST = TESTS[:-3] + '''

def test_wrong():
    assert slugify("a b") == "a_b"
```'''
GOOD_TOO = GOOD.replace("def slugify(text):", "def slugify(text):\n    text = str(text)")


def test_a_model_test_that_independent_implementations_all_fail_is_dropped(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"write_tests": [WRONG_TEST], "?": [GOOD_TOO, GOOD_TOO]})
    assert len(_prompts(llms, "?")) == 2  # two independent attempts, from the task alone
    assert all("failed" not in p and "test_wrong" not in p for p in _prompts(llms, "?"))
    assert [r.ok for r in state.rounds] == [True, False, True]
    assert _prompts(llms, "fix_code") == []  # nothing left to fix: the developer was never told to bend the code
    dropped = [c for r in state.log.of("tests_repaired") for c in r["changes"] if "test_wrong" in c]
    assert dropped and "2 independent implementations" in dropped[0]
    assert "test_wrong" not in (state.code_dir / "test_slugify_tool.py").read_text()
    assert GOOD.split("\n", 2)[2].rsplit("```", 1)[0] == (state.code_dir / "slugify_tool.py").read_text()
    assert "**Verdict:** PASS" in report


def test_an_independent_implementation_that_passes_every_test_replaces_the_code(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [HALF], "?": [GOOD]})
    # both voters are asked at once (decoded together); the first already passes everything and is adopted
    assert len(_prompts(llms, "?")) == 2
    assert state.log.of("second_opinion_adopted")[0]["attempt"] == 1
    assert (state.code_dir / "slugify_tool.py").read_text().rstrip().endswith('.strip("-")')
    assert _prompts(llms, "fix_code") == []
    assert "**Verdict:** PASS" in report and "independent attempt 1" in report


def test_attempts_that_fail_the_users_examples_have_no_vote(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"write_tests": [WRONG_TEST], "?": [BAD, "no code at all", BAD, BAD],
                                        "fix_code": [GOOD]})
    assert len(_prompts(llms, "?")) == 4  # two asked, two more because neither could vote; then it stops
    assert state.log.of("second_opinions_undecided")[0]["voters"] == 0
    assert "test_wrong" in (state.code_dir / "test_slugify_tool.py").read_text()  # kept: no evidence against it
    assert GOOD.split("\n", 2)[2].rsplit("```", 1)[0] == (state.code_dir / "slugify_tool.py").read_text()
    assert len(_prompts(llms, "fix_code")) == 1 and "**Verdict:** FAIL" in report


def test_attempts_continue_until_two_can_vote(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"write_tests": [WRONG_TEST], "?": [BAD, GOOD_TOO, GOOD_TOO, GOOD_TOO]})
    # the first failed the user's example: no vote; the two extra attempts, asked together, did vote
    assert len(_prompts(llms, "?")) == 4
    assert "test_wrong" not in (state.code_dir / "test_slugify_tool.py").read_text()
    assert "**Verdict:** PASS" in report


def test_the_consensus_attempts_vote_first_and_only_missing_voters_are_asked(project_dir: Path) -> None:
    # Three consensus attempts behave like the code: two of them are the voters, no new request is sent.
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"write_tests": [WRONG_TEST], "?": [GOOD_TOO, GOOD_TOO, GOOD_TOO]},
                                       consensus=3)
    assert len(_prompts(llms, "?")) == 3
    assert [(r["attempt"], r["reused"]) for r in state.log.of("second_opinion")] == [(1, True), (2, True)]
    assert "test_wrong" not in (state.code_dir / "test_slugify_tool.py").read_text()
    assert "**Verdict:** PASS" in report
    # One of two fails the user's example and has no vote: exactly one more attempt is asked.
    state, report, llms, _ = _run_with(project_dir / "again", _project_copy(project_dir),
                                       {"write_tests": [WRONG_TEST], "?": [BAD, GOOD_TOO, GOOD_TOO, BAD]},
                                       consensus=2)
    assert len(_prompts(llms, "?")) == 3
    assert [(r["attempt"], r["reused"]) for r in state.log.of("second_opinion")] == [
        (1, True), (2, True), (3, False)]
    assert "test_wrong" not in (state.code_dir / "test_slugify_tool.py").read_text()
    assert "**Verdict:** PASS" in report


def test_an_adopted_attempt_is_no_longer_independent_of_the_code(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [HALF], "write_tests": [WRONG_STRIP],
                                        "?": [GOOD_TOO, BAD, GOOD_TOO, GOOD_TOO, GOOD_TOO]}, consensus=3)
    assert state.log.of("consensus_adopted")[0]["attempt"] == 1
    # at hand: BAD (no vote) and the other agreeing attempt — not the adopted one, which is the code now;
    # so one more is asked for the second voter
    assert len(_prompts(llms, "?")) == 4
    assert [(r["attempt"], r["reused"]) for r in state.log.of("second_opinion")] == [
        (1, True), (2, True), (3, False)]
    assert "**Verdict:** PASS" in report


def test_the_consensus_attempts_are_sent_once_specify_is_done_and_taken_by_the_consensus(project_dir: Path) -> None:
    import json
    import threading
    from dataclasses import replace

    project = load_project(project_dir)
    project = replace(project, tasks=replace(project.tasks, workflow=replace(
        project.tasks.workflow, consensus_samples=3, assumed_examples=0, samples_ahead=True)))
    script = {"specify": ["Module slugify_tool.py with slugify(text)."], "implement": [GOOD],
              "write_tests": [WRONG_TEST], "fix_code": [GOOD], "document": [DOCS], "report": ["We built slugify."]}
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=script) for name in project.agents}
    inputs = run_inputs(project, task=SLUGIFY_TASK, module="slugify_tool.py")
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, lambda _: None)
    asked: list[tuple[int, str]] = []

    def draft(k: int, greedy: bool, note: str) -> str:  # a developer's server with slots
        asked.append((k, threading.current_thread().name))
        return GOOD_TOO

    draft.concurrent = True  # type: ignore[attr-defined]
    state.draft = draft
    execute(project, llms, state, inputs)
    events = [json.loads(line) for line in (run_dir / "run.jsonl").read_text().splitlines()]
    order = [(e["event"], e.get("task")) for e in events if e["event"] in ("task_done", "asked_ahead")]
    assert order.index(("asked_ahead", "consensus")) == order.index(("task_done", "specify")) + 1
    assert sorted(k for k, _ in asked) == [1, 2, 3]  # nothing asked twice
    assert all(name.startswith("ahead") for _, name in asked)
    assert state.log.of("consensus")[0]["candidates"] == 4
    # and the second opinions voted with them: no new request
    assert [r["reused"] for r in state.log.of("second_opinion")] == [True, True]


def test_a_test_file_cut_off_at_the_length_limit_keeps_its_complete_tests_and_is_not_asked_again(
        project_dir: Path) -> None:
    cut_off = TESTS[:-3] + '\n\ndef test_more():\n    assert slugify("a b") == "a-b"\n    assert slugify("a b") =='
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"write_tests": [cut_off, "should not be asked"]})
    assert len(_prompts(llms, "write_tests")) == 1
    changes = [c for r in state.log.of("tests_repaired") for c in r["changes"]]
    assert any("length limit" in c for c in changes)
    source = (state.code_dir / "test_slugify_tool.py").read_text()
    assert "def test_strip" in source and 'slugify("a b") ==\n' not in source
    assert state.rounds[1].collected == 4 and "**Verdict:** PASS" in report  # the example, 2 tests, test_more


def test_later_attempts_are_told_what_the_last_one_got_wrong(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, [BAD, BAD, GOOD], ["should not be asked"])
    greedy, hot = _prompts(llms, "?")[:2]
    assert "failed the examples given in the task" not in greedy
    assert "failed the examples given in the task" in hot and "hello-world-" in hot  # expected and actual
    assert "re.sub" not in hot  # the failed answer itself is not shown (a small model copies it)
    assert [r.ok for r in state.rounds][:3] == [False, False, True] and "**Verdict:** PASS" in report


def test_no_vote_without_the_users_examples_or_when_the_code_passes_no_model_test(project_dir: Path) -> None:
    # A task that states no example: nothing makes an independent attempt a credible voter.
    task = "Write slugify_tool.py with `slugify(text)` that lowercases text and joins words with hyphens."
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"write_tests": [WRONG_TEST], "?": [GOOD_TOO, GOOD_TOO]}, task=task)
    assert not state.examples and not state.log.of("second_opinion")
    assert "test_wrong" in (state.code_dir / "test_slugify_tool.py").read_text()  # no vote: nothing dropped
    # The verdict asks its own two attempts; both fail test_wrong as the code does: disputed, not a plain FAIL.
    assert len(_prompts(llms, "?")) == 2
    (v,) = state.log.of("verdict")
    assert v["kind"] == "fail-disputed" and any("test_wrong" in t for t in v["disputed"]) and v["attempts"] == 2, v
    assert "**Verdict:** FAIL, disputed — the code may be right" in report and "disputed `" in report
    # The code passes the user's example but none of the model's tests: no vote either.
    all_wrong = TESTS.replace('"hello-world"', '"x"').replace('== "hi"', '== "y"')
    state, report, llms, _ = _run_with(project_dir / "again", _project_copy(project_dir),
                                       {"write_tests": [all_wrong], "?": [GOOD_TOO, GOOD_TOO]})
    assert state.examples and not state.log.of("second_opinion") and "**Verdict:** FAIL" in report
    # the user's example passes, and both attempts fail the model's tests as the code does
    assert state.log.of("verdict")[0]["kind"] == "fail-disputed"


def test_a_line_of_a_model_test_that_does_not_parse_is_removed_and_the_rest_run(project_dir: Path) -> None:
    broken = TESTS.replace('    assert slugify("  Hi!  ") == "hi"\n',
                           '    assert slugify("  Hi!  ") == "hi"\n    assert slugify("!@#":) == ""\n')
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir), {"write_tests": [broken]})
    assert len(_prompts(llms, "write_tests")) == 1  # salvaged, not asked again
    tests = (state.code_dir / "test_slugify_tool.py").read_text()
    assert '":)' not in tests and 'slugify("  Hi!  ") == "hi"' in tests
    assert state.rounds[-1].ok and "**Verdict:** PASS" in report


def test_a_model_test_file_that_cannot_be_salvaged_goes_back_once_then_only_the_examples_count(
        project_dir: Path) -> None:
    hopeless = "```python\n# file: test_slugify_tool.py\n" + "def test_a(:\n" * 12 + "```"
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir), {"write_tests": [hopeless, hopeless]})
    assert "is not valid Python" in _prompts(llms, "write_tests")[1]
    assert not (state.code_dir / "test_slugify_tool.py").exists()
    assert state.log.of("tests_dropped") and state.rounds[-1].ok and "**Verdict:** PASS" in report


WRONG_STRIP = TESTS.replace('assert slugify("  Hi!  ") == "hi"', 'assert slugify("  Hi!  ") == "-hi"')


def test_attempts_that_agree_on_the_tests_calls_replace_code_the_model_tests_wrongly_agree_with(
        project_dir: Path) -> None:
    # The code (HALF: keeps a leading hyphen) passes the user's example and every model test, because the
    # tester's expected value is wrong in the same way. Two of three attempts agree on the right behaviour.
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [HALF], "write_tests": [WRONG_STRIP],
                                        "?": [GOOD_TOO, BAD, GOOD_TOO, GOOD_TOO, GOOD_TOO]}, consensus=3)
    rec = state.log.of("consensus")[0]
    assert rec["calls"] == ["slugify('Hello, World!')", "slugify('Hello World')", "slugify('  Hi!  ')"]
    assert rec["usable"] == [True, True, False, True]  # BAD fails the user's example: no say
    assert [r[2] for r in rec["results"]] == ["value '-hi'", "value 'hi'", "value '-hi-'", "value 'hi'"]
    assert rec["chosen"] == 1 and rec["cluster"] == [1, 3]
    assert state.log.of("consensus_adopted")[0]["attempt"] == 1
    assert (state.code_dir / "slugify_tool.py").read_text().rstrip().endswith('.strip("-")')
    assert not (state.run_dir / "probe").exists()  # the probe folder is gone; the code folder never had it
    assert not (state.code_dir / "test_localcrew_probe.py").exists()
    # then only the wrong model test fails: the vote drops it, and the run passes on the right code
    assert "**Verdict:** PASS" in report


def test_the_code_stays_when_most_attempts_behave_like_it(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"?": [HALF, GOOD_TOO, GOOD_TOO]}, consensus=3)
    rec = state.log.of("consensus")[0]
    assert rec["chosen"] == 0 and rec["cluster"] == [0, 2, 3]
    assert not state.log.of("consensus_adopted") and "**Verdict:** PASS" in report


# Alike on every call the tests make (none starts with "!"), not on the reversed example, which does.
ODD = GOOD.replace("def slugify(text):", 'def slugify(text):\n    if text[:1] == "!":\n        return "odd"')


def test_attempts_alike_on_the_tests_but_split_elsewhere_ask_more_to_break_the_tie(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [ODD], "?": [GOOD_TOO, BAD, GOOD_TOO, GOOD_TOO, GOOD_TOO]},
                                       consensus=2)
    assert len(_prompts(llms, "?")) == 4  # two attempts, then the shipped tie-break's two more
    rec = state.log.of("consensus")[0]
    assert "slugify('!dlroW ,olleH')" in rec["elsewhere_calls"] and rec["candidates"] == 5
    j = rec["elsewhere_calls"].index("slugify('!dlroW ,olleH')")
    assert [r[j] for r in rec["elsewhere"]] == ["value 'odd'", "value 'dlrow-olleh'", "value '-dlrow-olleh'",
                                                "value 'dlrow-olleh'", "value 'dlrow-olleh'"]
    assert rec["chosen"] == 1 and rec["cluster"] == [1, 3, 4] and rec["rivals"] == [0]
    assert "if text[:1]" not in (state.code_dir / "slugify_tool.py").read_text()  # the odd code went
    # three of the four alike on the tests agree elsewhere too: settled
    assert state.log.of("verdict")[0]["kind"] == "pass-examples" and "not settled" not in report


def test_an_even_split_the_tie_break_cannot_settle_is_a_pass_not_settled(project_dir: Path) -> None:
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [ODD], "?": [GOOD_TOO, BAD, ODD, GOOD_TOO, GOOD_TOO]},
                                       consensus=2)
    rec = state.log.of("consensus")[0]
    assert rec["chosen"] == 0 and rec["cluster"] == [0, 3] and rec["rivals"] == [1, 4]  # 2 vs 2: the code stays
    (v,) = state.log.of("verdict")
    assert v["kind"] == "pass-unsettled" and any("!dlroW" in u for u in v["unsettled"])
    assert "**Verdict:** PASS, not settled — your 1 example(s) pass, but independent attempts" in report
    assert "- not settled `slugify('!dlroW ,olleH')`: the code returns 'odd'; another attempt returns " \
           "'dlrow-olleh'" in report


def test_a_pass_no_other_attempt_behaves_like_asks_more_then_says_it_is_not_reproduced(project_dir: Path) -> None:
    # own/isbn: the code passes the user's example; every other attempt fails it
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"?": [BAD, BAD, BAD, BAD, BAD]}, consensus=2)
    assert len(_prompts(llms, "?")) == 4  # two attempts, then the tie-break's two more to reproduce it
    rec = state.log.of("consensus")[0]
    assert rec["candidates"] == 5 and rec["chosen"] == 0 and rec["cluster"] == [0] and rec["rivals"] == []
    (v,) = state.log.of("verdict")
    assert v["kind"] == "pass-unreproduced"
    assert v["alone"] == "none of 4 other independent attempts behaves like the code (4 fail the user's examples)"
    assert "**Verdict:** PASS, not reproduced — your 1 example(s) pass, but none of 4 other" in report
    assert "- not reproduced: none of 4" in report
    # one of the tie-break's attempts behaves like the code: reproduced, a plain PASS
    state, report, llms, _ = _run_with(project_dir / "again", _project_copy(project_dir),
                                       {"?": [BAD, BAD, GOOD_TOO, BAD]}, consensus=2)
    assert state.log.of("consensus")[0]["cluster"] == [0, 3]
    assert state.log.of("verdict")[0]["kind"] == "pass-examples" and "not reproduced" not in report


ONE_CALL_TESTS = TESTS.replace('assert slugify("  Hi!  ") == "hi"', 'assert slugify("Hello World") == "hello-world"')
ODD_D = GOOD.replace("def slugify(text):", 'def slugify(text):\n    if text[:1] == "d":\n        return "odd"')


def test_one_call_in_the_tests_still_tells_attempts_apart_by_its_variants(project_dir: Path) -> None:
    no_example = SLUGIFY_TASK.split(" For example")[0]
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [ODD_D], "write_tests": [ONE_CALL_TESTS],
                                        "?": [GOOD_TOO, GOOD_TOO, GOOD_TOO, GOOD_TOO]}, task=no_example, consensus=2)
    rec = state.log.of("consensus")[0]  # not skipped for "1 call(s) in the tests"
    assert rec["calls"] == ["slugify('Hello World')"] and rec["elsewhere_calls"] == ["slugify('dlroW olleH')"]
    assert rec["chosen"] == 1 and rec["cluster"] == [1, 2] and rec["rivals"] == [0]
    assert state.log.of("consensus_adopted") and "odd" not in (state.code_dir / "slugify_tool.py").read_text()


CLASS_TASK = '''Write slugify_tool.py with the class `Slugger` below, complete and working.

```python
class Slugger:
    def __init__(self, sep):
        self.sep = sep

    def slug(self, text):
        """The words of text, lowercased, joined by sep."""
```'''
CLASS_TESTS = '''```python
# file: test_slugify_tool.py
from slugify_tool import Slugger


def test_words():
    assert Slugger("-").slug("Hello World") == "hello-world"


def test_sep():
    assert Slugger("_").slug("A b") == "a_b"


def test_spaces():
    assert Slugger("-").slug("  Hi  ") == "hi"
```'''
CLASS_HALF = '''```python
# file: slugify_tool.py
class Slugger:
    def __init__(self, sep):
        self.sep = sep

    def slug(self, text):
        return self.sep.join(text.lower().split(" "))
```'''
CLASS_GOOD = CLASS_HALF.replace('text.lower().split(" ")', "text.lower().split()")


def test_a_class_task_compares_attempts_by_how_each_test_ends(project_dir: Path) -> None:
    # No call of a plain function in the tests: the behaviour compared is each test's outcome on one object.
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [CLASS_HALF], "write_tests": [CLASS_TESTS],
                                        "?": [CLASS_GOOD, CLASS_GOOD]}, task=CLASS_TASK, consensus=2)
    assert state.classes == ["Slugger"] and state.functions == [] and state.methods == ["__init__", "slug"]
    assert "from slugify_tool import Slugger\n" in _prompts(llms, "write_tests")[0]  # never its methods
    rec = state.log.of("consensus")[0]
    assert rec["calls"] == ["test test_slugify_tool.py::test_sep", "test test_slugify_tool.py::test_spaces",
                            "test test_slugify_tool.py::test_words"]
    assert rec["results"][0][:1] == ["pass"] and "'--hi--' == 'hi'" in rec["results"][0][1]  # the value it saw
    assert rec["results"][1] == ["pass", "pass", "pass"] and rec["chosen"] == 1 and rec["cluster"] == [1, 2]
    assert state.rounds[-1].ok
    (v,) = state.log.of("verdict")
    assert v["kind"] == "pass-model-tests" and (v["attempts"], v["agreeing"]) == (2, 2)
    assert "**Verdict:** PASS on model-written tests only" in report and "2 of 2 independent" in report


def test_an_attempt_that_renames_a_method_of_the_skeleton_is_asked_again(project_dir: Path) -> None:
    renamed = CLASS_GOOD.replace("def slug(self, text)", "def slugify(self, text)")
    state, _, llms, _ = _run_with(project_dir, load_project(project_dir),
                                  {"implement": [renamed], "write_tests": [CLASS_TESTS], "?": [CLASS_GOOD]},
                                  task=CLASS_TASK)
    (rec,) = state.log.of("skeleton_changed")
    assert rec["problems"] == ["`Slugger.slug` is missing"]
    assert "def slug(self, text)" in (state.code_dir / "slugify_tool.py").read_text()
    assert state.rounds[-1].ok


def test_a_pass_the_attempts_split_on_says_so_and_lists_the_calls(project_dir: Path) -> None:
    # own/wordcount's shape: the code (HALF) passes the user's example and the model tests (their expected value
    # is wrong the same way); of three attempts one behaves like it, two otherwise — two against two.
    state, report, llms, _ = _run_with(project_dir, load_project(project_dir),
                                       {"implement": [HALF], "write_tests": [WRONG_STRIP],
                                        "?": [GOOD_TOO, HALF, GOOD_TOO]}, consensus=3)
    rec = state.log.of("consensus")[0]
    assert rec["chosen"] == 0 and rec["cluster"] == [0, 2]  # the better-tested half: the code stays
    (v,) = state.log.of("verdict")
    assert v["kind"] == "pass-split" and v["split"] == [
        "`slugify('  Hi!  ')`: the code returns '-hi'; another attempt returns 'hi'"]
    assert "**Verdict:** PASS, split — your 1 example(s) pass, but the independent attempts split" in report
    assert "- split `slugify('  Hi!  ')`: the code returns '-hi'; another attempt returns 'hi'" in report
