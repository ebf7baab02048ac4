"""What the runaway guard (crew/answers/runaway.py) would have cut from answers that finished runs recorded.

    uv run python benchmarks/bench_runaway.py RUN_DIR_OR_KEEP_DIR [more …] [--json out.json]

Reads every `run.jsonl` under the folders given (bench_quality.py --keep folders, or runs/), takes each distinct
answer a model gave as it gave it (`answer` records: implement, the consensus's and second opinions' attempts),
and streams it through the guard as the served model does: asked each time a line ends. Not the tester's,
manager's or writer's answers: a task's `task_done` record holds its output after the handlers (the tester's
file split one assert a test, cut back, repaired), not what the model streamed — replaying those overstated
what the guard stops (58 "tests" that were one test of 58 asserts). Prints how many answers it
stops, why, and the characters it would have saved (about four to a token), with each stopped answer's kept
and dropped lengths. Pure reading: no model runs, nothing is written unless --json.

Why offline: whether the 0.5B tester loops depends on what decodes beside it (the same greedy request gave
256 tokens in one run and 1024 in the next), so a run alternated with the old code may or may not meet a loop;
the recorded answers say how often they did and what each cost.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from crew.answers import runaway
from crew.journal.log import RunLog


def answers_in(run_log: Path) -> list[tuple[str, str]]:
    """(what, text) for each answer a run recorded as the model gave it."""
    return [(f"answer/{rec.get('task', '?')}", rec["text"]) for rec in RunLog(run_log).records()
            if rec.get("event") == "answer" and isinstance(rec.get("text"), str)]


def first_stop(text: str) -> tuple[int, int, str] | None:
    """(characters streamed when the guard stops it, characters kept, why), or None."""
    for i, ch in enumerate(text):
        if ch == "\n":
            found = runaway.runaway(text[:i + 1])
            if found is not None:
                return i + 1, len(runaway.kept(text[:i + 1], found[0])), found[1]
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logs = sorted({p for f in args.folders for p in ([f] if f.name == "run.jsonl" else f.rglob("run.jsonl"))})
    if not logs:
        print("no run.jsonl under the folders given", file=sys.stderr)
        return 2
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    total_chars = 0
    for log in logs:
        for what, text in answers_in(log):
            if text in seen:
                continue
            seen.add(text)
            total_chars += len(text)
            stop = first_stop(text)
            if stop is not None:
                rows.append({"run": str(log.parent), "what": what, "length": len(text), "streamed": stop[0],
                             "kept": stop[1], "why": stop[2]})
    saved = sum(r["length"] - r["streamed"] for r in rows)
    print(f"{len(logs)} runs, {len(seen)} distinct answers, {total_chars} characters")
    print(f"stopped: {len(rows)} ({len(rows) / len(seen):.1%}); characters not decoded: {saved} "
          f"({saved / total_chars:.1%} of all, ~{saved // 4} tokens)")
    for r in rows:
        print(f"  {r['what']:24} {r['length']:6} chars → stopped at {r['streamed']:5}, kept {r['kept']:5}: "
              f"{r['why']}  ({Path(r['run']).name})")
    if args.json:
        args.json.write_text(json.dumps({"runs": len(logs), "answers": len(seen), "characters": total_chars,
                                         "stopped": rows, "saved_characters": saved}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
