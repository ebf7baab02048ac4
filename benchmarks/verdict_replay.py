"""The verdict kinds that finished runs would get from today's verdict code, and how right each kind was.

    uv run python benchmarks/verdict_replay.py RESULTS.json KEEP_DIR [RESULTS.json KEEP_DIR …]

RESULTS.json is what `bench_quality.py --json` wrote, KEEP_DIR the folder its `--keep` filled (one run folder
per task, named like the task: HumanEval-20). For each task the run's own `verdict` record is the kind it
reported; where that kind is a PASS with no hedge and the run's last consensus is still about the delivered
code (no fix round after it), the consensus's recorded results are handed to today's `probes.split`, so a
verdict kind added since (`pass-split`) is given where the run would now give it. Nothing else is recomputed:
a kind that needs a model call or a sandbox run is taken as recorded. Prints, per kind, the tasks and how many
passed the hidden tests, before and after. Pure reading.

Why: a change that only renames what the report says — no answer, test or choice of the workflow changes —
can be judged on every run already kept, instead of on one new run whose samples differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from crew.answers import probes
from crew.journal.log import RunLog

_PLAIN = ("pass-examples", "pass-model-tests")


def replayed(records: list[dict[str, Any]]) -> tuple[str, str]:
    """(the kind the run reported, the kind today's code gives it)."""
    kinds = [r.get("kind") for r in records if r.get("event") == "verdict"]
    said = str(kinds[-1]) if kinds else "not-recorded"
    if said not in _PLAIN:
        return said, said
    last = max((i for i, r in enumerate(records) if r.get("event") == "consensus"), default=None)
    if last is None or any(r.get("event") == "task_started" and r.get("task") == "fix_code"
                           for r in records[last:]):
        return said, said
    rec = records[last]
    if rec.get("chosen") is None:
        return said, said
    results = rec.get("results") or []
    usable = rec.get("usable") or [True] * len(results)
    passed = rec.get("tests_passed") or [0] * len(results)
    candidates = [probes.Candidate(results=tuple(r or ()), tests_passed=int(t), usable=bool(u))
                  for r, u, t in zip(results, usable, passed, strict=False)]
    choice = probes.Choice(index=int(rec["chosen"]), cluster=tuple(rec.get("cluster") or (rec["chosen"],)), score=0,
                           rivals=tuple(rec.get("rivals") or ()))
    return said, ("pass-split" if probes.split(list(rec.get("calls") or []), candidates, choice) else said)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="RESULTS.json KEEP_DIR, repeated")
    args = ap.parse_args(argv)
    if len(args.pairs) % 2:
        print("give RESULTS.json and KEEP_DIR in pairs", file=sys.stderr)
        return 2
    before: Counter[tuple[str, bool]] = Counter()
    after: Counter[tuple[str, bool]] = Counter()
    changed: list[str] = []
    for results_file, keep in zip(args.pairs[::2], args.pairs[1::2], strict=True):
        tasks = json.loads(Path(results_file).read_text()).get("tasks", [])
        for task in tasks:
            log = Path(keep) / str(task["id"]).replace("/", "-") / "run.jsonl"
            if not log.is_file():
                continue
            said, now = replayed(list(RunLog(log).records()))
            hidden = bool(task.get("crew_pass"))
            before[(said, hidden)] += 1
            after[(now, hidden)] += 1
            if now != said:
                changed.append(f"{task['id']}: {said} → {now} (hidden tests {'pass' if hidden else 'fail'})")
    for name, table in (("as reported", before), ("replayed with today's verdict code", after)):
        print(f"{name}:")
        for kind in sorted({k for k, _ in table}):
            n, ok = table[(kind, True)] + table[(kind, False)], table[(kind, True)]
            print(f"  {kind:20} {n:4} tasks, hidden pass {ok}")
        false_pass = sum(v for (k, h), v in table.items() if k.startswith("pass") and not h)
        plain = sum(v for (k, h), v in table.items() if k in _PLAIN and not h)
        print(f"  false PASS {false_pass}, of which plain (no hedge) {plain}")
    print("changed:" if changed else "changed: none")
    for line in changed:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
