"""report.md: what the crew built, with the real test results of every round and each agent's cost.

Everything in it comes from the run's own records (files on disk, pytest's reports, LLM counters); the
manager's summary is quoted as the model's words, never as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crew.tools.sandbox import TestReport


@dataclass(frozen=True)
class AgentUsage:
    name: str
    model: str
    device: str
    server: str
    prompt_tokens: int
    completion_tokens: int
    calls: int
    wall_s: float


def render_report(*, project_task: str, spec: str, summary: str, files: Mapping[str, int],
                  rounds: list[TestReport], usage: list[AgentUsage], max_fix_rounds: int,
                  notes: list[str], round_notes: list[str] | None = None, tests_origin: list[str] | None = None,
                  seed: int | None = None) -> str:
    final = rounds[-1] if rounds else None
    if final is None:
        verdict = "NOT TESTED — no test run happened"
    elif final.ok:
        verdict = f"PASS — {final.summary()}"
    else:
        verdict = f"FAIL — the final tests fail: {final.summary()}"
    out = ["# localcrew report", "", f"**Verdict:** {verdict}", "", "## Task", "", project_task.strip(), "",
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
