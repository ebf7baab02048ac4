"""Every record is a frozen dataclass written by `RunLog.record`: the JSON lines keep the keys each kind always
had (old run.jsonl files still resume), and the kinds that are read back come back as the same object."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from crew.journal import events, records
from crew.journal.events import Event, fields_of, parse
from crew.journal.log import RunLog

R = records
E = events

# What is read back: parse(the written line) is the very object written.
READ_BACK: list[Event] = [
    E.Start("kickoff", {"project_task": "slugify", "module": "slugify_tool.py"}),
    E.Start("resume"),
    E.TaskDone(task="implement", agent="Developer", description="d", raw="```python\n```", module_sha256="ab"),
    E.TestsRound(round=2, label="fix round 1", ok=True, summary="3 passed", task="fix_code",
                 report={"ok": True, "passed": 3, "failures": []}, examples_passed=1, examples_total=1,
                 model_passed=2, model_total=2),
    E.FilesWritten(agent="tester", paths=("test_slugify.py",)),
    E.FilesWritten(agent="documentation", paths=("README.md",), note="raw answer"),
    E.TestsRepaired(path="test_x.py", changes=("dropped test_a: it calls nothing",)),
    E.TestsDropped(path="test_x.py", why="it does not parse"),
    E.ImportTimeCodeRemoved(path="m.py", lines=("line 9: print(f(1))",)),
    E.BestRestored(round=2, path="m.py"),
    E.SecondOpinionAdopted(attempt=1),
    E.LlmCall(agent="developer", base_url="http://127.0.0.1:8001", model="qwen", seconds=1.25,
              prompt_tokens_so_far=100, completion_tokens_so_far=10),
    E.ServingFault(text="server gpu0 was down and has been restarted", agent="developer", server="gpu0",
                   action="restarted", pid=42, returncode=-11, signal="SIGSEGV", library="libcuda", faulted=True),
    E.ServingFault(text="run stopped", server="gpu0", action="crashed", times=2, returncode=1, signal="",
                   library="", faulted=False),
    E.ServingFault(text="CPU fallback for developer failed", agent="developer", action="cpu_failed"),
    E.ServingFault(text="failover", agent="developer", server="api", action="failover", previous="gpu0"),
]

# Every kind the run writes, with the keys its line carries after ts and event, in order: the shapes that
# RunLog.append(kind, **fields) wrote before records were typed.
SHAPES: list[tuple[Event, list[str]]] = [
    (R.Answer(task="implement", attempt=1, text="x"), ["task", "attempt", "text"]),
    (R.NoModule(attempt=1), ["attempt"]),
    (R.StubAnswer(attempt=1, functions=("f",)), ["attempt", "functions"]),
    (R.SkeletonChanged(attempt=1, problems=("`A.f` is missing",)), ["attempt", "problems"]),
    (R.DraftFailed(attempt=2, why="TimeoutError: t"), ["attempt", "why"]),
    (R.AttemptUnusable(task="consensus", attempt=1, why="no usable module in the answer"), ["task", "attempt", "why"]),
    (R.SecondOpinion(attempt=1, summary="1 failed", usable=True, examples_passed=1, examples_total=1),
     ["attempt", "summary", "usable", "examples_passed", "examples_total", "reused"]),
    (R.SecondOpinionsUndecided(voters=1, failing=("test_a",)), ["voters", "failing"]),
    (R.ConsensusSkipped(why="no other usable attempt"), ["why"]),
    (R.Consensus(calls=("f(1)", "f(2)"), candidates=2, results=(("value 1", None), ("value 1", "value 2")),
                 tests_passed=(1, 2), usable=(True, True), chosen=None, cluster=None),
     ["calls", "candidates", "results", "tests_passed", "usable", "chosen", "cluster", "elsewhere_calls", "elsewhere",
      "rivals"]),
    (R.ConsensusAdopted(attempt=1, agreeing=2), ["attempt", "agreeing"]),
    (R.NewBest(round=1, score=(0, 1, 3, 0)), ["round", "score"]),
    (R.ModuleRestored(task="implement", sha256="ab"), ["task", "sha256"]),
    (R.SpecFallback(why=("is empty",)), ["why"]),
    (R.TestsRejected(why=("has no test",)), ["why"]),
    (R.FixStopped(round=3, why="fix round 3 made no progress"), ["round", "why"]),
    (R.ExamplesWritten(count=0, note="the task states no example; only model-written tests"), ["count", "note"]),
    (R.ExamplesWritten(count=1, file="test_examples.py", examples=(R.ExampleCase("f(1)", "1", "equals"),)),
     ["count", "file", "examples"]),
    (R.FilesDropped(agent="tester", paths=("a.py",), why="too many files in one answer"), ["agent", "paths", "why"]),
    (R.FileSkipped(agent="tester", path="m.py", why="not this agent's file"), ["agent", "path", "why"]),
    (R.AskedAhead(task="write_tests", agent="tester", sent=True), ["task", "agent", "sent", "why"]),
    (R.FileRefused(agent="developer", path="m.py", why="too big"), ["agent", "path", "why"]),
    (R.FileRenamed(agent="developer", path="x.py", to="m.py"), ["agent", "path", "to"]),
    (R.TaskImportsAdded(path="m.py", imports=("import re",)), ["path", "imports"]),
    (R.TaskStarted(task="specify"), ["task"]),
    (R.PlanChosen(source="detected", simulated=False,
                  agents={"developer": R.PlannedAgent("qwen", "gpu", (0,), 8192)}), ["source", "simulated", "agents"]),
    (R.Usage(agents=(R.AgentUsage("developer", "qwen", "gpu 0", "gpu0 :8001", 10, 2, 1, 1.5),)), ["agents"]),
    (R.RunStopped(error="server gpu0 crashed"), ["error"]),
    (R.ReportWritten(path="runs/r1/report.md", ok=True, rounds=2, verdict="pass-examples"),
     ["path", "ok", "rounds", "verdict"]),
    (R.VerdictReached(kind="fail-disputed", attempts=2, agreeing=0, disputed=("test_m.py::test_a",)),
     ["kind", "attempts", "agreeing", "disputed", "undisputed", "unsettled", "alone"]),
    (R.AssumedAsked(examples=(R.ExampleCase("f(1)", "2", "equals"),), answer="assert f(1) == 2", seconds=1.5),
     ["examples", "answer", "seconds"]),
    (R.AssumedChecked(calls=("f(1)",), agreeing=(3,), attempts=3, accepted=("f(1)",)),
     ["calls", "agreeing", "attempts", "accepted"]),
    (R.GpuAlert(gpu=0, kind="temp", value=84, limit=70.0, message="hot"), ["gpu", "kind", "value", "limit", "message"]),
    (R.ServerReused(server="gpu0", port=8001), ["server", "port"]),
    (R.ServerReady(server="gpu0", pid=7, port=8001, models=("qwen",), seconds=1.5),
     ["server", "pid", "port", "models", "seconds"]),
    (R.ServerReady(server="n1-gpu0", pid=7, port=8001, models=("qwen",), seconds=1.5, host="n1", node_log="/l"),
     ["server", "pid", "port", "models", "seconds", "host", "node_log"]),
    (R.ServersReady(seconds=3.2), ["seconds"]),
    (R.ResidencyChecked(server="gpu0", planned_bytes=1, reported_bytes=2, device_bytes=2, host_model_bytes=0,
                        simulated=False),
     ["server", "planned_bytes", "reported_bytes", "device_bytes", "host_model_bytes", "simulated"]),
    (R.ResidencyWarning(text="evicted"), ["text"]),
    (E.Start("replay", {}), ["inputs"]),
    (E.TaskDone(task="implement"), ["task", "agent", "description", "raw", "module_sha256"]),
    (E.TestsRound(round=1), ["round", "label", "ok", "summary", "task", "report", "examples_passed",
                             "examples_total", "model_passed", "model_total"]),
    (E.FilesWritten(agent="tester", paths=("t.py",)), ["agent", "paths"]),
    (E.TestsRepaired(path="t.py", changes=("c",)), ["path", "changes"]),
    (E.TestsDropped(path="t.py", why="w"), ["path", "why"]),
    (E.ImportTimeCodeRemoved(path="m.py", lines=("l",)), ["path", "lines"]),
    (E.BestRestored(round=1, path="m.py"), ["round", "path"]),
    (E.SecondOpinionAdopted(attempt=1), ["attempt"]),
    (E.LlmCall(agent="a", base_url="u", model="m", seconds=1.0, prompt_tokens_so_far=1, completion_tokens_so_far=1),
     ["agent", "base_url", "model", "seconds", "prompt_tokens_so_far", "completion_tokens_so_far", "started",
      "ended"]),
    (E.ServingFault(text="t", agent="a", server="s", action="restart_failed"), ["text", "agent", "server", "action"]),
    (E.ServingFault(text="t", agent="a", action="cpu_failed"), ["text", "agent", "action"]),
    (E.ServingFault(text="t", server="s", action="crashed", times=1, returncode=-9, signal="SIGKILL", library="",
                    faulted=False),
     ["text", "server", "action", "times", "returncode", "signal", "library", "faulted"]),
]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


@pytest.mark.parametrize("event", READ_BACK, ids=lambda e: e.event)
def test_a_kind_that_is_read_back_comes_back_as_the_object_written(tmp_path: Path, event: Event) -> None:
    log = RunLog(tmp_path / "run.jsonl")
    log.record(event)
    assert log.read() == [event]


@pytest.mark.parametrize(("event", "keys"), SHAPES, ids=lambda x: x.event if isinstance(x, Event) else "")
def test_each_kind_writes_the_keys_it_always_had(tmp_path: Path, event: Event, keys: list[str]) -> None:
    log = RunLog(tmp_path / "run.jsonl")
    log.record(event)
    (line,) = _lines(log.path)
    assert line.startswith(b'{"ts": ')  # what the torn-line recovery looks for
    rec = json.loads(line)
    assert list(rec) == ["ts", "event", *keys] and rec["event"] == event.event
    assert json.loads(json.dumps(fields_of(event))) == {k: rec[k] for k in keys}


def test_values_are_plain_json_as_before(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.jsonl")
    log.record(R.Consensus(calls=("f(1)",), candidates=2, results=(("value 1",), (None,)), tests_passed=(1, 0),
                           usable=(True, False), chosen=None, cluster=None))
    log.record(R.PlanChosen(source="cpu", simulated=True,
                            agents={"developer": R.PlannedAgent("qwen", "cpu", (), 4096)}))
    log.record(R.ExamplesWritten(count=1, file="test_examples.py", examples=(R.ExampleCase("f(1)", "1", "equals"),)))
    consensus, plan, examples = (json.loads(line) for line in _lines(log.path))
    assert consensus["results"] == [["value 1"], [None]] and consensus["chosen"] is None
    assert consensus["cluster"] is None  # no choice: the key is there, null
    assert plan["agents"] == {"developer": {"model": "qwen", "placement": "cpu", "gpus": [], "num_ctx": 4096}}
    assert examples["examples"] == [{"call": "f(1)", "expected": "1", "kind": "equals"}]


def test_one_writer_and_one_type_per_kind() -> None:
    assert not hasattr(RunLog, "append")
    kinds: dict[str, type] = {}
    for module in (events, records):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Event) or cls.__module__ != module.__name__:
                continue
            assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
            kind = next(f for f in dataclasses.fields(cls) if f.name == "event")
            if kind.init:  # a grouped type (Start) or a base (Event, FileChange, Other): the kind is passed
                continue
            name = str(kind.default)
            assert name not in kinds, (cls, kinds.get(name))
            kinds[name] = cls
    shaped = {e.event for e, _ in SHAPES}
    assert set(kinds) <= shaped, set(kinds) - shaped  # every kind's shape is pinned above


def test_a_record_of_an_older_version_still_parses_with_defaults() -> None:
    fault = parse({"ts": 1.0, "event": "serving_fault", "text": "gone", "action": "crashed"})
    assert isinstance(fault, E.ServingFault) and (fault.agent, fault.server) == ("?", "?")
    assert fault == E.ServingFault(text="gone", action="crashed")
    done = parse({"ts": 1.0, "event": "task_done", "task": "implement"})
    assert done == E.TaskDone(task="implement")
