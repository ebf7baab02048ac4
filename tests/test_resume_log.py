"""Resume never double-counts: a run cut where a kill would cut it, resumed with a scripted LLM (real crewai
crew, real files, real pytest runs), and the log read back in order."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from crew.config import TASK_NAMES, load_project
from crew.run.resume import _continue
from crew.run.workflow import execute, open_state, run_inputs, usage_of, write_report
from tests.fake_llm import ScriptedLLM
from tests.test_workflow import BAD, DOCS, GOOD, SLUGIFY_TASK, TESTS


def _llms(project: Any, dev: list[str], fix: list[str]) -> dict[str, ScriptedLLM]:
    script = {"specify": ["Module slugify_tool.py with slugify(text)."], "implement": dev,
              "write_tests": [TESTS], "fix_code": fix, "document": [DOCS], "report": ["We built slugify."]}
    return {name: ScriptedLLM(model=f"scripted-{name}", script={k: list(v) for k, v in script.items()})
            for name in project.agents}


def _prompts(llms: dict[str, ScriptedLLM], task: str) -> list[str]:
    return [text for llm in llms.values() for (t, text) in llm.seen if t == task]


def _first_run(project_dir: Path, dev: list[str], fix: list[str]):  # type: ignore[no-untyped-def]
    project = load_project(project_dir)
    inputs = run_inputs(project, task=SLUGIFY_TASK, module="slugify_tool.py")
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, lambda _: None)
    llms = _llms(project, dev, fix)
    crew = execute(project, llms, state, inputs)
    report = write_report(project, crew, state, inputs, usage_of(llms, {}), []).read_text()
    # what the same run gives uninterrupted: rounds, fix prompts, verdict line
    return project, inputs, run_dir, (len(state.rounds), len(_prompts(llms, "fix_code")), _verdict(report))


def _verdict(report: str) -> str:
    """The report's verdict line without pytest's timing (which differs from run to run)."""
    line = next(ln for ln in report.splitlines() if ln.startswith("**Verdict:**"))
    return re.sub(r" in [\d.]+ ?s\b", "", line)


def _cut_after(log: Path, keep: Any) -> None:
    """Leave the log as a kill right after the first record matching `keep` would have left it."""
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next(i for i, ln in enumerate(lines) if keep(json.loads(ln))) + 1
    log.write_text("".join(lines[:n]), encoding="utf-8")


def _resume(project: Any, inputs: dict[str, str], run_dir: Path, dev: list[str], fix: list[str]):  # type: ignore[no-untyped-def]
    state = open_state(project, run_dir, inputs, lambda _: None)
    finished = state.restore()
    llms = _llms(project, dev, fix)
    crew = execute(project, llms, state, inputs, start=lambda c: _continue(c, finished, inputs), label="resume")
    report = write_report(project, crew, state, inputs, usage_of(llms, {}), []).read_text()
    return state, finished, llms, report


def test_a_kill_between_tests_and_task_done_does_not_count_the_round_twice(project_dir: Path) -> None:
    project, inputs, run_dir, whole = _first_run(project_dir, [BAD], [BAD, BAD, BAD])
    assert whole[1] >= 1 and "FAIL" in whole[2]  # the uninterrupted run: at least one fix round, still failing
    # write_tests ran pytest and logged its round, then: kill (before its task_done)
    _cut_after(run_dir / "run.jsonl", lambda r: r["event"] == "tests" and r.get("task") == "write_tests")
    state, finished, llms, report = _resume(project, inputs, run_dir, [BAD], [BAD, BAD, BAD])
    assert [r.task for r in finished] == ["specify", "implement"]  # write_tests runs again, with its round
    # the resumed run is the uninterrupted one: every fix round happens, no round counted twice
    assert (len(state.rounds), len(_prompts(llms, "fix_code"))) == whole[:2] and whole[2] == _verdict(report)
    again = open_state(project, run_dir, inputs, lambda _: None)  # a second resume reads the same
    assert len(again.restore()) == len(TASK_NAMES) and len(again.rounds) == whole[0]


def test_a_skipped_fix_code_does_not_shift_what_resume_redoes(project_dir: Path) -> None:
    project, inputs, run_dir, whole = _first_run(project_dir, [GOOD], ["should not be asked"])
    _cut_after(run_dir / "run.jsonl", lambda r: r["event"] == "task_done" and r["task"] == "document")
    state, finished, llms, report = _resume(project, inputs, run_dir, [GOOD], ["should not be asked"])
    assert [r.task for r in finished] == ["specify", "implement", "write_tests", "fix_code", "document"]
    assert finished[3].skipped is True
    assert _prompts(llms, "document") == [] and len(_prompts(llms, "report")) == 1  # only the report is left
    assert len(state.rounds) == whole[0] and "**Verdict:** PASS" in whole[2] and whole[2] == _verdict(report)


def _rec(event: str, **kw: Any) -> dict[str, Any]:
    return {"event": event, **kw}


def test_settled_reads_the_log_in_order() -> None:
    from crew.journal.log import settled

    r = {"collected": 1}
    log = [_rec("kickoff"), _rec("task_done", task="specify"), _rec("task_done", task="implement"),
           _rec("tests", task="write_tests", round=1, report=r), _rec("task_done", task="write_tests"),
           _rec("tests", task="fix_code", round=2, report=r),            # killed mid-fix_code
           _rec("resume"), _rec("tests", task="fix_code", round=2, report=r),
           _rec("tests", task="fix_code", round=3, report=r), _rec("task_done", task="fix_code"),
           _rec("task_done", task="document"), _rec("task_done", task="report"),
           _rec("replay"), _rec("tests", task="write_tests", round=1, report=r),
           _rec("task_done", task="write_tests")]                         # a replay from write_tests, killed
    s = settled(log, TASK_NAMES)
    assert [f.task for f in s.finished] == ["specify", "implement", "write_tests"]  # later ones redo
    assert [x.round for x in s.rounds] == [1] and s.rerun_rounds == 1
    upto = settled(log[:12], TASK_NAMES, before="fix_code")
    assert [f.task for f in upto.finished] == ["specify", "implement", "write_tests"]
    assert [x.round for x in upto.rounds] == [1]


def test_the_report_of_a_resumed_run_counts_every_part(tmp_path: Path) -> None:
    """Usage and failovers of the part before a kill are in the log; the report adds them to this part's."""
    from crew.journal.events import LlmCall, ServingFault, Start
    from crew.journal.log import RunLog
    from crew.run.report import AgentUsage, earlier_faults, render_report, whole_run_usage

    log = RunLog(tmp_path / "run.jsonl")
    log.record(Start("kickoff"))
    log.record(LlmCall(agent="developer", seconds=2.0, prompt_tokens_so_far=100, completion_tokens_so_far=10))
    log.record(ServingFault(text="[bold yellow]failover[/]: developer moved from gpu0 to cpu-fallback",
                            agent="developer", action="failover"))
    log.record(LlmCall(agent="developer", seconds=3.0, prompt_tokens_so_far=250, completion_tokens_so_far=30))
    log.record(LlmCall(agent="manager", seconds=1.0, prompt_tokens_so_far=40, completion_tokens_so_far=4))
    log.record(Start("resume"))  # killed, then resumed: this part's usage is in the LLM objects
    log.record(LlmCall(agent="manager", seconds=1.5, prompt_tokens_so_far=60, completion_tokens_so_far=6))
    now = [AgentUsage("manager", "m", "cpu", "cpu :1", 60, 6, 1, 1.5),
           AgentUsage("developer", "d", "cpu", "cpu :1", 0, 0, 0, 0.0)]
    whole = {u.name: u for u in whole_run_usage(log.records(), now)}
    assert (whole["developer"].prompt_tokens, whole["developer"].completion_tokens) == (250, 30)
    assert whole["developer"].calls == 2 and whole["developer"].wall_s == 5.0
    assert (whole["manager"].prompt_tokens, whole["manager"].calls, whole["manager"].wall_s) == (100, 2, 2.5)
    notes = earlier_faults(log.records())
    assert notes == ["(before the resume) failover: developer moved from gpu0 to cpu-fallback"]
    text = render_report(project_task="t", spec="s", summary="x", files={}, rounds=[], usage=list(whole.values()),
                         max_fix_rounds=2, notes=notes)
    assert "| developer | d | cpu | cpu :1 | 250 | 30 | 2 | 5.0 s |" in text and "before the resume" in text


class FullAt:
    """A disk that fills up when the record of `event` is written (a seam for RunLog's os.write)."""

    def __init__(self, event: str) -> None:
        self.marker = f'"event": "{event}"'.encode()

    def write(self, fd: int, data: bytes) -> int:
        import errno
        import os

        if self.marker in data:
            os.write(fd, data[: len(data) // 2])  # half of it reaches the file, as on a real full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        import os

        os.fsync(fd)


def test_a_full_disk_in_a_guardrail_is_one_line_and_the_run_resumes(project_dir: Path) -> None:
    import pytest

    from crew.errors import DiskFullError
    from crew.journal.log import RunLog

    project = load_project(project_dir)
    inputs = run_inputs(project, task=SLUGIFY_TASK, module="slugify_tool.py")
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    state = open_state(project, run_dir, inputs, lambda _: None)
    state.log = RunLog(state.log.path, io=FullAt("tests"))  # the disk fills as write_tests' guardrail logs
    with pytest.raises(DiskFullError) as info:
        execute(project, _llms(project, [GOOD], ["unused"]), state, inputs)
    line = info.value.one_line()
    assert "\n" not in line and "the disk is full" in line and f"localcrew resume {run_dir}" in line
    raw = (run_dir / "run.jsonl").read_bytes()
    assert raw.endswith(b"\n") and all(json.loads(ln) for ln in raw.splitlines())  # nothing torn
    # space freed: the run resumes at the task that could not log its round, and finishes
    state2, finished, llms, report = _resume(project, inputs, run_dir, [GOOD], ["unused"])
    assert len(finished) < len(TASK_NAMES) and "**Verdict:** PASS" in report
    assert len(state2.rounds) == len(RunLog(run_dir / "run.jsonl").of("tests"))  # each logged round once


def test_disk_full_as_error_names_the_file_and_the_run(tmp_path: Path) -> None:
    import errno

    import pytest

    from crew.errors import DiskFullError, disk_full_as_error

    (tmp_path / "run.jsonl").write_text("")
    target = tmp_path / "pytest-round-1.txt"
    with pytest.raises(DiskFullError) as info, disk_full_as_error():
        raise OSError(errno.ENOSPC, "No space left on device", str(target))
    assert info.value.one_line() == (f"{target}: the disk is full (No space left on device); nothing half-written "
                                     f"was kept — fix: free some space there, then continue the run with "
                                     f"`localcrew resume {tmp_path}`")
    with pytest.raises(PermissionError), disk_full_as_error():  # any other OSError is not ours to reword
        raise PermissionError(errno.EACCES, "Permission denied")
