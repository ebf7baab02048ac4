"""How much the agents' requests overlapped in finished runs, from their run.jsonl `llm_call` records.

    uv run python benchmarks/overlap.py runs/<run> [more runs …] [--markdown]

Per run: each agent's requests (count, seconds answered), the wall time during which at least one request was
in flight (the union of the intervals), the seconds during which requests of two different agents were in
flight at once, and the ratio of request-seconds to that union (1.0: one request at a time; 2.0: two at once on
average). Pure reading: nothing is run. A run logged before `started`/`ended` existed (issue #25) is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Interval:
    agent: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Overlap:
    run: str
    per_agent: dict[str, tuple[int, float]]  # agent -> (requests, seconds answered)
    busy_s: float          # union of all request intervals
    cross_agent_s: float   # time with requests of at least two different agents in flight
    request_s: float       # sum of all request durations

    @property
    def concurrency(self) -> float:
        return self.request_s / self.busy_s if self.busy_s else 0.0


def intervals(log: Path) -> list[Interval]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "llm_call" and "started" in rec and "ended" in rec:
            out.append(Interval(str(rec.get("agent", "?")), float(rec["started"]), float(rec["ended"])))
    return out


def measure(name: str, spans: list[Interval]) -> Overlap:
    """Sweep the interval ends in time order; count requests and distinct agents in flight between them."""
    events = sorted([(s.start_s, 1, s.agent) for s in spans] + [(s.end_s, -1, s.agent) for s in spans])
    in_flight: dict[str, int] = {}
    busy = cross = 0.0
    last = events[0][0] if events else 0.0
    for t, step, agent in events:
        active = [a for a, n in in_flight.items() if n > 0]
        if active:
            busy += t - last
            if len(active) >= 2:
                cross += t - last
        in_flight[agent] = in_flight.get(agent, 0) + step
        last = t
    per_agent: dict[str, tuple[int, float]] = {}
    for s in spans:
        n, secs = per_agent.get(s.agent, (0, 0.0))
        per_agent[s.agent] = (n + 1, secs + s.end_s - s.start_s)
    return Overlap(run=name, per_agent=per_agent, busy_s=busy, cross_agent_s=cross,
                   request_s=sum(s.end_s - s.start_s for s in spans))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (each with a run.jsonl)")
    ap.add_argument("--markdown", action="store_true", help="one Markdown table")
    args = ap.parse_args(argv)
    rows = []
    for run in map(Path, args.runs):
        log = run / "run.jsonl"
        if not log.is_file():
            print(f"overlap: {run} has no run.jsonl — give a run folder (runs/<timestamp>-<slug>)", file=sys.stderr)
            return 2
        spans = intervals(log)
        if spans:
            rows.append(measure(run.name, spans))
    if args.markdown:
        print("| run | requests | request-seconds | busy wall (s) | two agents at once (s) "
              "| requests in flight, mean |")
        print("|---|---|---|---|---|---|")
    for o in rows:
        n = sum(c for c, _ in o.per_agent.values())
        if args.markdown:
            print(f"| {o.run} | {n} | {o.request_s:.0f} | {o.busy_s:.0f} | {o.cross_agent_s:.0f} "
                  f"| {o.concurrency:.2f} |")
        else:
            agents = ", ".join(f"{a} {c}×/{s:.0f} s" for a, (c, s) in sorted(o.per_agent.items()))
            print(f"{o.run}: {n} requests ({agents}); busy {o.busy_s:.0f} s, two agents at once "
                  f"{o.cross_agent_s:.0f} s, {o.concurrency:.2f} in flight on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
