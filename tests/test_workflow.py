"""The workflow's logic with a scripted LLM: real crewai crew, real files, real pytest runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crew.config import load_project
from crew.workflow import execute, open_state, run_inputs, usage_of, write_report
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
    project = load_project(project_dir)
    script = {
        "specify": ["Module slugify_tool.py with slugify(text)."],
        "implement": dev_replies,
        "write_tests": [TESTS],
        "fix_code": fix_replies,
        "document": [DOCS],
        "report": ["We built slugify."],
    }
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=script) for name in project.agents}
    inputs = run_inputs(project, task=None, module=None)
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    messages: list[str] = []
    state = open_state(project, run_dir, inputs, messages.append)
    crew = execute(project, llms, state, inputs)
    report = write_report(project, crew, state, inputs, usage_of(llms, {}), [])
    return state, report.read_text(), llms, messages


def _prompts(llms, task: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [text for llm in llms.values() for (t, text) in llm.seen if t == task]


def test_pass_first_time(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, [GOOD], ["should not be asked"])
    assert len(state.rounds) == 1 and state.rounds[0].ok
    assert state.rounds[0].passed == 2 and state.rounds[0].collected == 2
    assert _prompts(llms, "fix_code") == []  # skipped: the tests passed
    assert "**Verdict:** PASS — 2 passed" in report
    assert (state.code_dir / "slugify_tool.py").exists() and (state.code_dir / "README.md").exists()
    events = [r["event"] for r in state.log.records()]
    assert events.count("tests") == 1 and "task_done" in events


def test_fail_then_fixed_in_round_two(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, [BAD], [GOOD])
    assert [r.ok for r in state.rounds] == [False, True]
    assert state.rounds[0].failed == 1 and state.rounds[0].failures[0].name.endswith("test_strip")
    fix_prompt = _prompts(llms, "fix_code")[0]
    assert "test_strip" in fix_prompt and "REAL PYTEST RESULT" in fix_prompt  # the real failure reached the dev
    assert "**Verdict:** PASS" in report and "| 1 | 2 | 1 | 1 |" in report


def test_still_failing_after_last_round_is_reported_honestly(project_dir: Path) -> None:
    state, report, llms, messages = _run(project_dir, [BAD], [BAD, BAD, BAD])
    assert [r.ok for r in state.rounds] == [False, False, False]
    assert len(_prompts(llms, "fix_code")) == 2  # max_fix_rounds = 2
    assert "**Verdict:** FAIL — tests still fail after 2 of 2 fix rounds" in report
    assert "The tests still fail" in _prompts(llms, "fix_code")[1]  # guardrail feedback for the retry
    assert any("round 3" in m for m in messages)


def test_no_code_block_asks_once_more_then_gives_up(project_dir: Path) -> None:
    state, report, llms, _ = _run(project_dir, ["I cannot write code.", "Still no code."], [GOOD])
    assert len(_prompts(llms, "implement")) == 2
    assert not state.rounds[0].ok  # import of the missing module fails — real pytest says so
    assert "FAIL" in report or "PASS" in report


def test_module_is_derived_from_the_task(project_dir: Path) -> None:
    project = load_project(project_dir)
    assert run_inputs(project, task="Write `fizzbuzz(n)` returning a list", module=None)["module"] == "fizzbuzz.py"
    assert run_inputs(project, task="Create calc.py with add()", module=None)["module"] == "calc.py"
    from crew.errors import WorkflowError

    with pytest.raises(WorkflowError, match="not a Python module file name"):
        run_inputs(project, task="x", module="bad name.py")
