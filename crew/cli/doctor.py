"""`plan-gpus doctor` (also `localcrew doctor`, `bash scripts/setup.sh doctor`): can this machine run the
installed llama.cpp build? One screen — the CPU and its instruction sets, the features the build was
compiled with, llama.cpp's version, the GPU backend compiled in, the NVIDIA driver — and the decisive test:
the embedded model loaded and a few tokens generated in a child process. Exit 0 when it ran, 2 when not.

`--self-check` is what scripts/setup.sh runs after every `uv sync`: one line, exit 0 when the build runs,
3 when the build itself crashed or uses instructions this CPU lacks (a rebuild with the portable flags may
help, and setup does it once), 2 for anything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crew.cli import Runner

EXIT_BUILD_BROKEN = 3  # for scripts/setup.sh: rebuilding llama-cpp-python may help


def register(name: str, parser: argparse.ArgumentParser) -> Runner:
    parser.description = ("Check the installed llama.cpp build against this machine: CPU features, GPU "
                          "backend, NVIDIA driver, and a real load of the embedded model (exit 0 or 2).")
    parser.add_argument("--self-check", action="store_true",
                        help="one line for scripts/setup.sh: exit 0 ok, 3 the build cannot run here, 2 other")
    parser.add_argument("--custom-build", action="store_true",
                        help="with --self-check: the build was made with your own CMAKE_ARGS; do not require the "
                             "portable CPU flags")
    parser.add_argument("--python", help="the interpreter whose llama_cpp is checked (default: this one)")
    parser.add_argument("--model", help="a GGUF to load instead of the embedded model")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds for the load and tokens")
    return run


def _model(arg: str | None) -> Path:
    if arg:
        path = Path(arg)
        if not path.is_file():
            from crew.errors import UsageError

            raise UsageError(f"model file not found: {path}", where="--model", fix="give the path of a .gguf file")
        return path
    from crew.models.embedded import EMBEDDED_REF, embedded_model_path

    return embedded_model_path(EMBEDDED_REF)


def run(ns: argparse.Namespace) -> int:
    from crew.hardware.cpu import read_cpuinfo
    from crew.models.build_check import compare, nvml_driver, portable, probe, problems

    cpu = read_cpuinfo()
    model = _model(ns.model)
    report = probe(model, python=ns.python, timeout_s=ns.timeout)
    cmp = compare(report.system_info, cpu.flags)
    found = problems(report, cmp, cpu_flags=cpu.flags)
    broken = bool(cmp.missing) or (report.exit is not None and report.exit.faulted)
    if ns.self_check and not found and not ns.custom_build and not portable(cmp):
        # runs here, but compiled for this CPU (a wheel cached by an older set-up): the next CPU may not run it
        print("self-check: this llama.cpp build was compiled for this CPU (" + " ".join(sorted(cmp.compiled))
              + "), not with the portable flags; a venv or fleet node on another CPU would crash", file=sys.stderr)
        return EXIT_BUILD_BROKEN
    if ns.self_check:
        if not found:
            rate = report.tokens_per_s
            print(f"self-check: llama.cpp loaded {model.name} and generated tokens"
                  + (f" ({rate:.1f} tokens/s)" if rate else "") + " — this build runs here")
            return 0
        print("self-check: " + "; ".join(found), file=sys.stderr)
        return EXIT_BUILD_BROKEN if broken else 2
    _screen(cpu, report, cmp, model, nvml_driver())
    if found:
        for line in found:
            print(f"problem: {line}")
        print("fix: `bash scripts/setup.sh doctor` rebuilds llama-cpp-python with the portable flags "
              "(AVX2/FMA/F16C, no AVX-512/AMX) and checks again")
        return 2
    print("verdict: this build runs on this machine")
    return 0


def _screen(cpu: object, report: object, cmp: object, model: Path, driver: str) -> None:
    from crew.hardware.cpu import CpuInfo
    from crew.models.build_check import GGML_TO_CPUINFO, PORTABLE_FEATURES, BuildReport, FeatureComparison

    assert isinstance(cpu, CpuInfo) and isinstance(report, BuildReport) and isinstance(cmp, FeatureComparison)
    build = report.stage("build")
    has = [g for g in GGML_TO_CPUINFO if g in cmp.machine]
    lacks = [g for g in ("AVX512", "AMX_INT8") if g not in cmp.machine]
    amx = sorted(f for f in cpu.flags if f.startswith("amx"))
    print(f"machine   {cpu.model_name or 'unknown CPU'} · {cpu.cores} cores")
    print(f"  CPU has   {' '.join(has) or '(unknown)'}" + (f"   (no {', '.join(lacks)})" if lacks else "")
          + (f"   AMX flags: {' '.join(amx)}" if amx else ""))
    if build:
        kind = ("portable" if cmp.compiled == PORTABLE_FEATURES else
                "native or custom" if cmp.compiled else "unknown")
        print(f"build     llama-cpp-python {build.get('package_version', '?')} · "
              f"ggml {build.get('ggml_version') or '?'} (commit {build.get('ggml_commit') or 'unknown'})")
        print(f"  compiled  {' '.join(g for g in GGML_TO_CPUINFO if g in cmp.compiled) or '(none read)'}   ({kind})")
        if cmp.missing:
            print(f"  MISSING   on this CPU: {' '.join(sorted(cmp.missing))} — the build will die on SIGILL")
        if cmp.fragile:
            print(f"  note      {' '.join(sorted(cmp.fragile))} compiled in: it faults in some VMs that advertise it")
        backends = ", ".join(cmp.gpu_backends) if cmp.gpu_backends else "none (a CPU build)"
        print(f"  GPU       backend compiled in: {backends}; offload {'yes' if build.get('gpu_offload') else 'no'}")
    else:
        print("build     llama.cpp could not be loaded (see the problem below)")
    print(f"  NVML      {driver}")
    loaded, gen = report.stage("loaded"), report.stage("generated")
    if gen:
        rate = report.tokens_per_s
        print(f"self-check {model.name}: loaded in {loaded.get('seconds')} s, {gen.get('tokens')} tokens in "
              f"{gen.get('seconds')} s" + (f" ({rate:.1f} tokens/s)" if rate else ""))
    else:
        print(f"self-check {model.name}: did not finish (last stage: {report.last_stage})")
