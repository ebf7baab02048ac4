"""benchmarks/overlap.py: request overlap read from run.jsonl (pure arithmetic on intervals)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import overlap  # noqa: E402


def test_overlap_of_two_agents_and_a_gap() -> None:
    spans = [overlap.Interval("developer", 0, 10), overlap.Interval("tester", 5, 15),
             overlap.Interval("developer", 20, 30), overlap.Interval("developer", 22, 26)]
    o = overlap.measure("r", spans)
    assert o.busy_s == 25 and o.cross_agent_s == 5 and o.request_s == 34
    assert o.per_agent == {"developer": (3, 24), "tester": (1, 10)}
    assert round(o.concurrency, 2) == 1.36  # two developer samples at once count, but not as two agents


def test_reads_llm_calls_and_skips_old_records(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run1"
    run.mkdir()
    recs = [{"event": "llm_call", "agent": "manager", "started": 100.0, "ended": 110.0},
            {"event": "llm_call", "agent": "tester", "seconds": 3.0},  # before started/ended existed
            {"event": "tests"}]
    (run / "run.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\nnot json\n")
    assert overlap.main([str(run)]) == 0
    assert "run1: 1 requests (manager 1×/10 s); busy 10 s" in capsys.readouterr().out
    assert overlap.main([str(tmp_path / "nothing")]) == 2
