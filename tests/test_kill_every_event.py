"""kill -9 at every journal event of a run, in turn, then resume: the run goes on from the code the last
finished task left, and delivers only tested code (issue 24).

The scenario is the one where a second opinion replaces the code (tests/test_workflow.py): implement writes
code that fails a model-written test, an independent attempt passes everything and is adopted. Before the
ledger (crew/run/ledger.py), each attempt was written over code/ and the original put back in a `finally`:
a kill in between left the untested attempt in code/, and resume took it for the code of the last round.
Each kill is a forked child of a fresh driver process (tests/kill_at_event.py: crewai imported once, no
crew ever run there, so forking is safe), killed with SIGKILL right after its N-th record; the resume, here,
is the real `restore` + `_continue` with the scripted LLM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crew.config import load_project
from crew.run.resume import _continue
from crew.run.workflow import execute, open_state, run_inputs, usage_of, write_report
from crew.sandbox import run_pytest
from tests.conftest import ROOT
from tests.fake_llm import ScriptedLLM
from tests.kill_at_event import NEVER
from tests.test_workflow import DOCS, GOOD, HALF, SLUGIFY_TASK, TESTS

pytestmark = pytest.mark.slow

MODULE = "slugify_tool.py"


def _script() -> dict[str, list[str]]:
    return {"specify": ["Module slugify_tool.py with slugify(text)."], "implement": [HALF], "?": [GOOD],
            "write_tests": [TESTS], "fix_code": [GOOD], "document": [DOCS], "report": ["We built slugify."]}


def _body(answer: str) -> str:
    return answer.split("\n", 2)[2].rsplit("```", 1)[0]


def _resume(project: Any, run_dir: Path) -> tuple[Any, str]:
    inputs = run_inputs(project, task=SLUGIFY_TASK, module=MODULE)
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, lambda _: None)
    finished = state.restore()
    last = next((t.task for t in reversed(finished) if not t.skipped), None)
    oracle = run_dir / "oracle" / f"{last}.py"
    if last is not None and oracle.exists():  # the code the last finished task left, and no other
        assert (run_dir / "code" / MODULE).read_text() == oracle.read_text(), f"{run_dir.name}: after {last}"
    assert not [p.name for p in (run_dir / "code").iterdir() if p.name.endswith(".tmp")]
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=_script()) for name in project.agents}
    crew = execute(project, llms, state, inputs, start=lambda c: _continue(c, finished, inputs), label="resume")
    report = write_report(project, crew, state, inputs, usage_of(llms, {}), []).read_text()
    return state, report


def test_a_kill_at_every_journal_event_resumes_on_tested_code(project_dir: Path, tmp_path: Path) -> None:
    project = load_project(project_dir)
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"script": _script(), "task": SLUGIFY_TASK, "module": MODULE, "consensus": 0}))
    driver = subprocess.run([sys.executable, "-m", "tests.kill_at_event", str(project_dir), str(tmp_path),
                             str(scenario)], cwd=ROOT, capture_output=True, text=True, timeout=1500,
                            stdin=subprocess.DEVNULL)
    assert driver.returncode == 0, driver.stderr[-3000:]
    result = json.loads((tmp_path / "statuses.json").read_text())
    assert os.WIFEXITED(result["whole"]) and os.WEXITSTATUS(result["whole"]) == 0
    events = (tmp_path / f"kill-{NEVER}" / "run.jsonl").read_text().splitlines()
    assert any('"second_opinion_adopted"' in e for e in events)  # the scenario is the one that matters
    kinds = [e.split('"event": "', 1)[1].split('"', 1)[0] for e in events]
    statuses = {int(k): v for k, v in result["statuses"].items()}
    assert sorted(statuses) == list(range(1, len(events) + 1))
    for k, status in statuses.items():
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, kinds[k - 1], status)
        run_dir = tmp_path / f"kill-{k}"
        state, report = _resume(project, run_dir)
        delivered = (run_dir / "code" / MODULE).read_text()
        # delivered code is tested code: the last round ran on exactly this module, and pytest agrees now
        assert state.last is not None, (k, kinds[k - 1])
        again = run_pytest(run_dir / "code", limits=state.limits)
        assert (again.ok, again.passed, again.failed) == (state.last.ok, state.last.passed, state.last.failed), \
            (k, kinds[k - 1])
        assert delivered == _body(GOOD), (k, kinds[k - 1])  # the uninterrupted run's outcome, every time
        assert "**Verdict:** PASS" in report, (k, kinds[k - 1])
