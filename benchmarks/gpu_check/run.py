"""The CUDA check, start to end, within a time budget: GPU → build → GGUFs → loads → llama-server slots →
JSON + tables.

    python -m benchmarks.gpu_check.run --out DIR          # on a CUDA machine, after gpu_check.sh prepare
    python -m benchmarks.gpu_check.run --cpu --out DIR    # dry run here: CPU llama.cpp, a tiny model

The dry run does everything but the build and NVML: it writes a GGUF with the same writer, loads it in a
process per case with the project's CPU llama-cpp-python, parses the same log lines, calls the same
`plan-gpus estimate` (device cpu), starts set-up's CPU llama-server (LOCALCREW_LLAMA_SERVER, else the venv's)
through the same slots case (slots.py) and writes the same two files.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.gpu_check import build as build_mod
from benchmarks.gpu_check import slots
from benchmarks.gpu_check.case import CaseResult, CaseSpec
from benchmarks.gpu_check.compare import Row, make_row, row_json, table_markdown
from benchmarks.gpu_check.logparse import load_buffers
from benchmarks.gpu_check.shapes import LLAMA_3_2_1B, TINY, ModelShape, file_bytes, gpu_shapes
from benchmarks.gpu_check.slots import SlotsRow, SlotsSpec

if TYPE_CHECKING:
    from crew.hardware.nvml import NvmlProvider

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / ".gpu_check"        # what prepare packs (carried to the device, replaced on each call)
WORK = ROOT / ".gpu_check_work"     # on the device: source, build, GGUFs; kept between calls on a warm machine
GPU_CONTEXTS = (4096, 32768)
CPU_CONTEXTS = (256, 512)
KV_TYPES = ("f16", "q8_0")
_REPORT_RESERVE_S = 20   # kept back for writing the report
_CASES_RESERVE_S = 150   # the build must end this long before the deadline, or there is no time to load
_SLOTS_FIRST_S = {True: 45.0, False: 15.0}  # a slots server before any has run (GPU, CPU): start + requests
_LOG_WORDS = ("buffer size", "CUDA", "offload", "error", "warn", "fail")


class Clock:
    """Phase timings against one deadline (monotonic seconds)."""

    def __init__(self, budget_s: float, started_ago_s: float = 0.0) -> None:
        self.start = time.monotonic() - started_ago_s
        self.deadline = self.start + budget_s
        self.phases: dict[str, float] = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @contextlib.contextmanager
    def phase(self, name: str) -> Any:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - started, 1)
            print(f"[gpu_check] {name}: {self.phases[name]:.1f} s ({self.left():.0f} s of the budget left)",
                  flush=True)


def plan_gpus_estimate(path: Path, spec: CaseSpec, device: str, bandwidth_gbs: float) -> dict[str, Any]:
    """`plan-gpus estimate PATH --device DEVICE --ctx N --kv-type T --json --bandwidth-gbs B`, run in-process
    through the CLI's own entry point; its JSON object."""
    from crew.cli import main

    argv = ["estimate", str(path), "--device", device, "--ctx", str(spec.ctx_tokens), "--kv-type", spec.kv_type,
            "--batch", str(spec.batch), "--ubatch", str(spec.ubatch), "--bandwidth-gbs", f"{bandwidth_gbs:.3f}",
            "--json"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"plan-gpus {' '.join(argv)} exited {rc}: {err.getvalue().strip()}")
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def run_case_process(spec: CaseSpec, env: dict[str, str], timeout_s: float, work: Path) -> CaseResult:
    """The case in a fresh Python process (a fresh CUDA context); RuntimeError with its output if it fails."""
    result_path = work / f"{spec.model}-{spec.ctx_tokens}-{spec.kv_type}.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check.case", json.dumps(asdict(spec)),
                           str(result_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}")
    return CaseResult(**json.loads(result_path.read_text(encoding="utf-8")))


def write_models(shapes: tuple[ModelShape, ...], work: Path) -> dict[str, Path]:
    """One GGUF per shape; a file finished by an earlier run (its marker exists) is kept."""
    from benchmarks.gpu_check.synth import write_gguf

    paths = {}
    for shape in shapes:
        path, done = work / f"synthetic-{shape.name}.gguf", work / f"synthetic-{shape.name}.done"
        if not done.exists():
            write_gguf(path, shape)
            done.write_text(str(path.stat().st_size))
        paths[shape.name] = path
    return paths


def case_plan(shapes: tuple[ModelShape, ...], contexts: tuple[int, ...], *, gpu: bool, n_gen: int,
              threads: int) -> list[CaseSpec]:
    """Smallest model and context first, so a budget that runs short drops the 14B at the longest context."""
    return [CaseSpec(model=s.name, path="", ctx_tokens=min(ctx, s.n_ctx_train), kv_type=kv, gpu=gpu,
                     n_gen=n_gen, threads=threads)
            for s in shapes for ctx in contexts for kv in KV_TYPES]


def expected_case_s(shape: ModelShape, done_s: dict[str, float], shapes: dict[str, ModelShape]) -> float:
    """A case's duration, from the slowest case of the same model so far, else scaled by file size from the
    models done (process start and CUDA set-up ≈ 5 s, then loading and decoding read the weights); 60 s
    before any case has run."""
    if shape.name in done_s:
        return done_s[shape.name]
    if not done_s:
        return 60.0
    per_byte = max(max(t - 5.0, 0.0) / file_bytes(shapes[m]) for m, t in done_s.items())
    return 5.0 + per_byte * file_bytes(shape)


def run_cases(specs: list[CaseSpec], shapes: dict[str, ModelShape], paths: dict[str, Path], env: dict[str, str],
              clock: Clock, work: Path, device: str, bandwidth_gbs: float,
              out: Path, reserve_s: float = 0.0) -> tuple[list[Row], list[dict[str, Any]]]:
    """Each case in turn while the budget (less `reserve_s`, kept for the slots case) allows."""
    rows: list[Row] = []
    skipped: list[dict[str, Any]] = []
    done_s: dict[str, float] = {}
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for spec in specs:
        spec = replace(spec, path=str(paths[spec.model]))
        label = f"{spec.model} ctx {spec.ctx_tokens} {spec.kv_type}"
        need = expected_case_s(shapes[spec.model], done_s, shapes) * 1.3
        if clock.left() - _REPORT_RESERVE_S - reserve_s < need:
            skipped.append({"case": label, "reason": f"time budget: {clock.left():.0f} s left, ~{need:.0f} s needed"})
            print(f"[gpu_check] skip {label}: time budget", flush=True)
            continue
        started = time.monotonic()
        try:
            result = run_case_process(spec, env, clock.left() - _REPORT_RESERVE_S, work)
            row = make_row(spec, result, load_buffers(result.log),
                           plan_gpus_estimate(Path(spec.path), spec, device, bandwidth_gbs))
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            skipped.append({"case": label, "reason": f"failed: {exc}"})
            print(f"[gpu_check] {label} failed: {exc}", flush=True)
            continue
        took = time.monotonic() - started
        done_s[spec.model] = max(done_s.get(spec.model, 0.0), took)
        (out / "logs" / f"{spec.model}-{spec.ctx_tokens}-{spec.kv_type}.log").write_text(
            "\n".join(line for line in result.log.splitlines() if any(w in line for w in _LOG_WORDS)) + "\n")
        rows.append(row)
        print(f"[gpu_check] {label}: {took:.1f} s, {row.decode_tokens_per_s:.1f} tok/s", flush=True)
    return rows, skipped


def slots_specs(path: Path, shape: ModelShape, *, gpu: bool) -> list[SlotsSpec]:
    ctx = min(slots.GPU_SLOT_CTX if gpu else slots.CPU_SLOT_CTX, shape.n_ctx_train)
    return [SlotsSpec(model=shape.name, path=str(path), slots=n, ctx_tokens=ctx, gpu=gpu, n_gen=128 if gpu else 16,
                      n_vocab=shape.n_vocab) for n in slots.SLOT_COUNTS]


def slots_reserve_s(gpu: bool) -> float:
    """Time kept back from the library cases for the slots case (both servers)."""
    return 2 * _SLOTS_FIRST_S[gpu]


def run_slots(specs: list[SlotsSpec], binary: str | None, why_none: str, clock: Clock, work: Path, out: Path,
              gpu_uuid: str | None = None) -> tuple[list[SlotsRow], list[dict[str, Any]]]:
    """Each server in turn while the budget allows; the server is stopped whatever happens."""
    from crew.errors import LocalcrewError
    from crew.models.gguf import read_gguf
    from crew.planner.vram import estimate

    rows: list[SlotsRow] = []
    skipped: list[dict[str, Any]] = []
    took_s: float | None = None
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for spec in specs:
        if binary is None:
            skipped.append({"case": spec.label, "reason": why_none})
            print(f"[gpu_check] skip {spec.label}: {why_none}", flush=True)
            continue
        need = (took_s * 1.5) if took_s is not None else _SLOTS_FIRST_S[spec.gpu]
        if clock.left() - _REPORT_RESERVE_S < need:
            skipped.append({"case": spec.label, "reason": f"time budget: {clock.left():.0f} s left, ~{need:.0f} s "
                                                          "needed"})
            print(f"[gpu_check] skip {spec.label}: time budget", flush=True)
            continue
        started = time.monotonic()
        state = work / f"server-{spec.slots}"
        state.mkdir(parents=True, exist_ok=True)
        (state / f"slots{spec.slots}.log").unlink(missing_ok=True)  # the supervisor appends
        try:
            result = slots.run_server(spec, binary, state, clock.deadline - _REPORT_RESERVE_S, gpu_uuid=gpu_uuid)
            row = slots.make_row(spec, result, load_buffers(result.log),
                                 estimate(read_gguf(Path(spec.path)), slots.run_settings(spec)))
        except (LocalcrewError, RuntimeError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if isinstance(exc, slots.OverBudget) else f"failed: {exc}"
            skipped.append({"case": spec.label, "reason": reason})
            print(f"[gpu_check] {spec.label}: {reason}", flush=True)
            continue
        took_s = time.monotonic() - started
        (out / "logs" / f"slots-{spec.slots}.log").write_text(
            " ".join(result.argv) + "\n"
            + "\n".join(line for line in result.log.splitlines() if any(w in line for w in _LOG_WORDS)) + "\n")
        rows.append(row)
        speeds = ", ".join(f"{lv.at_once} at once {lv.tokens_per_s:.1f} tok/s" for lv in row.levels)
        print(f"[gpu_check] {spec.label}: {took_s:.1f} s, KV {row.kv_bytes / 2**20:.1f} MiB (est. "
              f"{row.estimate_kv_bytes / 2**20:.1f}), compute {row.compute_bytes / 2**20:.1f} MiB (est. "
              f"{row.estimate_compute_bytes / 2**20:.1f}), {speeds}", flush=True)
    return rows, skipped


def gpu_facts(provider: NvmlProvider) -> dict[str, Any]:
    """GPU 0 as the project's NVML detection sees it (name, compute capability, bandwidth)."""
    from crew.hardware.nvml import detect

    found = detect(provider)
    if not found.gpus:
        raise RuntimeError(f"no GPU: {found.note}")
    return asdict(found.gpus[0])


def write_report(out: Path, report: dict[str, Any], rows: list[Row], device_label: str, clock: Clock,
                 server_rows: list[SlotsRow] | None = None) -> str:
    out.mkdir(parents=True, exist_ok=True)
    report["rows"] = [row_json(r) for r in rows]
    report["server_rows"] = [slots.row_json(r) for r in server_rows or []]
    report["total_s"] = round(time.monotonic() - clock.start, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    lines = [f"# GPU check: {report['device_name']} ({report['mode']})", "",
             table_markdown(rows, device_label=device_label)]
    if server_rows:
        lines += ["llama-server, started as the crew starts it, against the estimate for that many slots:", "",
                  slots.table_markdown(server_rows, device_label=device_label)]
    lines += [f"- {note}" for note in report["notes"]]
    lines += [f"- skipped {s['case']}: {s['reason']}" for s in report["skipped"]]
    lines.append(f"- phases (s): {json.dumps(report['phases_s'])}, {report['total_s']} s in all")
    text = "\n".join(lines) + "\n"
    (out / "gpu_check.md").write_text(text, encoding="utf-8")
    return text


def compute_capability(gpu: dict[str, Any]) -> str:
    """From NVML, else from nvidia-smi (a driver whose NVML lacks the call)."""
    if gpu.get("compute_capability"):
        return str(gpu["compute_capability"])
    out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader", "-i", "0"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.strip().splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or WORK / "out"))
    ap.add_argument("--cpu", action="store_true", help="dry run on the CPU build of llama-cpp-python")
    ap.add_argument("--budget-s", type=float, default=540.0, help="everything, build included (default 540)")
    ap.add_argument("--started-ago-s", type=float, default=0.0, help="time the caller already spent")
    ap.add_argument("--work", type=Path, default=None,
                    help=f"where the GGUFs go (default {WORK.name}/models on CUDA, a temp folder with --cpu)")
    ap.add_argument("--bandwidth-gbs", type=float, default=20.0, help="--cpu only: the roofline's bandwidth")
    args = ap.parse_args(argv)
    clock = Clock(args.budget_s, args.started_ago_s)
    report: dict[str, Any] = {"mode": "cpu" if args.cpu else "cuda", "device_name": "unknown", "notes": [],
                              "skipped": [], "phases_s": clock.phases}
    rows: list[Row] = []
    server_rows: list[SlotsRow] = []
    label = "CPU" if args.cpu else "CUDA0"
    try:
        rows = _run(args, clock, report, server_rows)
    except Exception as exc:  # whatever stops the run, the report says so (and the traceback follows it)
        import traceback

        report["notes"].append(f"stopped: {type(exc).__name__}: {exc}")
        print(write_report(args.out, report, rows, label, clock, server_rows))
        traceback.print_exc()
        return 1
    print(write_report(args.out, report, rows, label, clock, server_rows))
    return 0 if rows and not report["skipped"] else 1


def _run(args: argparse.Namespace, clock: Clock, report: dict[str, Any], server_rows: list[SlotsRow]) -> list[Row]:
    """The library cases' rows; the slots case's go into `server_rows`."""
    shapes: tuple[ModelShape, ...]
    server: str | None = None
    why_no_server = ""
    gpu_uuid: str | None = None
    # The dry run's models go to a folder of its own, removed when this returns (it used to stay in /tmp).
    scratch = tempfile.TemporaryDirectory(prefix="gpu_check-") if args.cpu and not args.work else None
    work = args.work or (Path(scratch.name) if scratch else WORK / "models")
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if args.cpu:
        shapes, contexts, device, bandwidth = (TINY,), CPU_CONTEXTS, "cpu", args.bandwidth_gbs
        report |= {"device_name": "CPU (dry run)", "llama_cpp": "llama-cpp-python's CPU library"}
        report["notes"].append(f"dry run: bandwidth {bandwidth} GB/s assumed, no NVML")
        from crew.models.server_binary import ENV_OVERRIDE, find_server_binary

        server = find_server_binary()
        why_no_server = (f"no llama-server ({ENV_OVERRIDE}=none, or set-up did not build it: bash scripts/setup.sh "
                         "sync)")
    else:
        shapes, contexts, device = gpu_shapes(), GPU_CONTEXTS, "cuda"
        from crew.hardware.nvml import PynvmlProvider

        with clock.phase("gpu"):
            gpu = gpu_facts(PynvmlProvider())
            architecture = build_mod.cuda_architecture(compute_capability(gpu))
        bandwidth = (gpu["bandwidth_bytes_per_s"] or 0) / 1e9
        gpu_uuid = gpu.get("uuid")
        manifest = json.loads((BUNDLE / "manifest.json").read_text(encoding="utf-8"))
        report |= {"device_name": gpu["name"], "gpu": gpu, "llama_cpp": manifest["llama_cpp"],
                   "bundle": manifest, "cuda_architecture": architecture}
        with clock.phase("unpack"):
            src = build_mod.unpack(BUNDLE / manifest["llama_cpp"]["tarball"], WORK / "src",
                                   manifest["llama_cpp"]["commit"])
        build = build_mod.Build(src, WORK / "build", architecture, os.cpu_count() or 4)
    with clock.phase("gguf"):
        paths = write_models(shapes, work)
    report["models"] = {s.name: {"path": str(paths[s.name]), "file_bytes": paths[s.name].stat().st_size,
                                 **asdict(s)} for s in shapes}
    if not args.cpu:
        with clock.phase("build (overlapping gguf)"):
            built = build.wait(clock.deadline - _CASES_RESERVE_S)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "build.log").write_text(built.log_tail + "\n", encoding="utf-8")
        report["build"] = {"ok": built.ok, "seconds": round(built.seconds, 1), "reason": built.reason,
                           "server": str(built.server) if built.server else None,
                           "server_reason": built.server_reason}
        if not built.ok:
            report["notes"].append(f"no CUDA figures: {built.reason} (build.log has its last lines)")
            return []
        if built.server is None:
            report["notes"].append(f"no llama-server figures: {built.server_reason}")
        server, why_no_server = (str(built.server) if built.server else None), built.server_reason
        env["LLAMA_CPP_LIB_PATH"] = str(built.lib_dir)
    specs = case_plan(shapes, contexts, gpu=not args.cpu, n_gen=16 if args.cpu else 128,
                      threads=1 if args.cpu else (os.cpu_count() or 4))
    slots_shape = TINY if args.cpu else LLAMA_3_2_1B  # the smallest: the check is the server, not the model
    s_specs = slots_specs(paths[slots_shape.name], slots_shape, gpu=not args.cpu)
    report["server"] = {"binary": server, "reason": "" if server else why_no_server}
    with clock.phase("loads"):
        rows, skipped = run_cases(specs, {s.name: s for s in shapes}, paths, env, clock, work, device,
                                  bandwidth, args.out, reserve_s=slots_reserve_s(not args.cpu) if server else 0.0)
    report["skipped"] = skipped
    report["bandwidth_gbs"] = bandwidth
    with clock.phase("server"):
        found, s_skipped = run_slots(s_specs, server, why_no_server, clock, work, args.out, gpu_uuid)
    server_rows.extend(found)
    skipped.extend(s_skipped)
    return rows


if __name__ == "__main__":
    sys.exit(main())
