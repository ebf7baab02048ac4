"""report.md: what the crew built, with the real test results of every round and each agent's cost.

Everything in it comes from the run's own records (files on disk, pytest's reports, LLM counters); the
manager's summary is quoted as the model's words, never as evidence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from crew.journal.events import Event, LlmCall, ServingFault, Start, parse
from crew.journal.records import AgentUsage as AgentUsage  # the report's rows are the `usage` record's
from crew.run.verdict import Verdict, classify
from crew.sandbox import TestReport


def render_report(*, project_task: str, spec: str, summary: str, files: Mapping[str, int],
                  rounds: list[TestReport], usage: list[AgentUsage], max_fix_rounds: int,
                  notes: list[str], round_notes: list[str] | None = None, tests_origin: list[str] | None = None,
                  seed: int | None = None, verdict: Verdict | None = None) -> str:
    if verdict is None:  # a caller without the run's attempts: the verdict from the rounds alone
        verdict = classify(rounds[-1] if rounds else None, 0, [])
    out = ["# localcrew report", "", f"**Verdict:** {verdict.headline()}", "", "## How sure", "", *verdict.lines(),
           "", "## Task", "", project_task.strip(), "",
           "## Specification (manager)", "", spec.strip() or "(empty)", "", "## Files written", ""]
    out += [f"- `{p}` ({n} bytes)" for p, n in sorted(files.items())] or ["(none)"]
    if tests_origin:
        out += ["", "## Where the tests came from", ""] + [f"- {line}" for line in tests_origin]
    out += ["", "## Test results (real pytest runs)", "",
            "| round | step | collected | passed | failed | errors | skipped | timed out | summary |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds, 1):
        step = round_notes[i - 1] if round_notes and i <= len(round_notes) else ""
        out.append(f"| {i} | {step} | {r.collected} | {r.passed} | {r.failed} | {r.errors} | {r.skipped} | "
                   f"{'yes' if r.timed_out else 'no'} | {r.summary()} |")
    for i, r in enumerate(rounds, 1):
        if r.failures or r.import_errors or r.tampered:
            out += ["", f"Round {i} failures:", ""]
            out += [f"- `{f.name}`: {f.message.splitlines()[0] if f.message else ''}" for f in r.failures]
            out += [f"- import: {e}" for e in r.import_errors]
            out += [f"- refused by the sandbox: {t}" for t in r.tampered]
    out += ["", "## Agents", "", "| agent | model | device | server | prompt tokens | completion tokens | "
            "calls | wall time |", "|---|---|---|---|---|---|---|---|"]
    for u in usage:
        out.append(f"| {u.name} | {u.model} | {u.device} | {u.server} | {u.prompt_tokens} | "
                   f"{u.completion_tokens} | {u.calls} | {u.wall_s:.1f} s |")
    if seed is not None:
        out += ["", f"Every model request was sent with sampling seed {seed} (tasks.yaml `workflow.seed`)."]
    out += ["", "## Summary (manager, model-written)", "", summary.strip() or "(empty)", ""]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def files_on_disk(code_dir: Path) -> dict[str, int]:
    skip = {"__pycache__", ".pytest_cache", ".sandbox"}
    return {str(p.relative_to(code_dir)): p.stat().st_size for p in code_dir.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(code_dir).parts)}


# ------------------------------------------------------------------------------------------ a run in parts


def plain(text: str) -> str:
    """Rich markup off, for the Markdown report."""
    return re.sub(r"\[/?[a-z ]*\]", "", text)


def llm_call(agent: str, base_url: str, model: str, took_s: float, llm: Any) -> LlmCall:
    """An answered request's record, with the agent's token counters in this part of the run: so a part that
    is killed still leaves its usage in the log, and the report of a resumed run counts it."""
    summary = llm.get_token_usage_summary()
    ended = time.time()
    return LlmCall(agent=agent, base_url=base_url, model=model, seconds=round(took_s, 3),
                   prompt_tokens_so_far=int(summary.prompt_tokens),
                   completion_tokens_so_far=int(summary.completion_tokens),
                   started=round(ended - took_s, 3), ended=round(ended, 3), cut=str(getattr(llm, "last_cut", "")))


def _earlier_parts(records: Iterable[dict[str, Any] | Event]) -> list[list[Event]]:
    """The events of each part of the run before the current one (a part begins at kickoff/resume/replay)."""
    parts: list[list[Event]] = [[]]
    for item in records:
        rec = item if isinstance(item, Event) else parse(item)
        if isinstance(rec, Start):
            parts.append([])
        parts[-1].append(rec)
    return parts[:-1]


def whole_run_usage(records: Iterable[dict[str, Any] | Event], current: list[AgentUsage]) -> list[AgentUsage]:
    """This part's usage plus every earlier part's, from their `llm_call` records (calls and seconds
    answered; tokens from the last `*_so_far` counters of each part)."""
    extra: dict[str, list[float]] = {}
    for part in _earlier_parts(records):
        last: dict[str, LlmCall] = {}
        for rec in part:
            if isinstance(rec, LlmCall):
                e = extra.setdefault(rec.agent, [0, 0, 0, 0.0])
                e[2] += 1
                e[3] += rec.seconds
                last[rec.agent] = rec
        for agent, call in last.items():
            extra[agent][0] += call.prompt_tokens_so_far
            extra[agent][1] += call.completion_tokens_so_far
    out = []
    for u in current:
        p, c, n, s = extra.pop(u.name, [0, 0, 0, 0.0])
        out.append(replace(u, prompt_tokens=u.prompt_tokens + int(p), completion_tokens=u.completion_tokens + int(c),
                           calls=u.calls + int(n), wall_s=u.wall_s + s))
    for name, (p, c, n, s) in extra.items():  # an agent that worked only in an earlier part
        out.append(AgentUsage(name=name, model="?", device="?", server="?", prompt_tokens=int(p),
                              completion_tokens=int(c), calls=int(n), wall_s=s))
    return out


def earlier_faults(records: Iterable[dict[str, Any] | Event]) -> list[str]:
    """Serving faults and failovers of the earlier parts of the run, as the notes they were then."""
    out = []
    for part in _earlier_parts(records):
        for rec in part:
            if isinstance(rec, ServingFault):
                text = rec.text or f"{rec.action}: {rec.agent} on {rec.server}"
                out.append(f"(before the resume) {plain(text)}")
    return out
