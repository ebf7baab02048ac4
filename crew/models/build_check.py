"""Does the installed llama.cpp build run on this machine? The set-up self-check and `localcrew doctor`.

The check runs crew/models/build_probe.py in a child process (so a crash ends the child, not us): it loads
llama.cpp, reports what the build is, loads a model and generates a few tokens. `BuildReport` holds what it
said and how it ended; `compare` sets the CPU features the build was compiled with against the ones this
CPU has; `problems` says, one line each, what stops the build from running here.

Pure except `probe` (the child process) and `nvml_driver` (the NVIDIA library, when there is one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from crew.hardware.crash import ServerExit, describe

PROBE = Path(__file__).with_name("build_probe.py")

# ggml's names for the x86 features it compiles in (llama_print_system_info) -> /proc/cpuinfo's flag.
GGML_TO_CPUINFO = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX_VNNI": "avx_vnni", "AVX2": "avx2", "F16C": "f16c",
    "FMA": "fma", "BMI2": "bmi2", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
}
# What the portable build (scripts/setup.sh) compiles in: every x86-64 CPU since Haswell (2013) and Zen.
PORTABLE_FEATURES = frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"})
# Advertised by CPUs whose use can still fault where a hypervisor does not hand the state over (seen: AMX
# in a Firecracker VM; ldtilecfg raised a general protection fault although the kernel granted the
# permission).
FRAGILE_FEATURES = frozenset({"AMX_INT8"})

PROBE_TOKENS = 8
PROBE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class BuildReport:
    """What the probe child said, stage by stage, and how it ended."""

    stages: tuple[dict[str, object], ...]
    exit: ServerExit | None  # None: the child ran out of time
    timeout_s: float = PROBE_TIMEOUT_S

    def stage(self, name: str) -> dict[str, object]:
        return next((s for s in self.stages if s.get("stage") == name), {})

    @property
    def ok(self) -> bool:
        return self.exit is not None and self.exit.returncode == 0 and bool(self.stage("generated"))

    @property
    def last_stage(self) -> str:
        return str(self.stages[-1].get("stage", "")) if self.stages else "start"

    @property
    def system_info(self) -> str:
        return str(self.stage("build").get("system_info", ""))

    @property
    def tokens_per_s(self) -> float | None:
        g = self.stage("generated")
        tokens, seconds = g.get("tokens"), g.get("seconds")
        if isinstance(tokens, int) and isinstance(seconds, (int, float)) and seconds > 0:
            return tokens / seconds
        return None


@dataclass(frozen=True)
class FeatureComparison:
    compiled: frozenset[str]            # ggml's x86 feature names the build has
    machine: frozenset[str]             # the same names, for what this CPU reports
    missing: frozenset[str]             # compiled in, not on this CPU: SIGILL waiting to happen
    fragile: frozenset[str]             # compiled in and reported, but known to fault in some VMs
    gpu_backends: tuple[str, ...] = field(default=())  # "CUDA", ... from the system info


def compiled_features(system_info: str) -> frozenset[str]:
    """ggml's 'CPU : SSE3 = 1 | AVX2 = 1 | ...' -> {'SSE3', 'AVX2', ...} (x86 features only)."""
    found = set()
    for part in system_info.split("|"):
        name, _, value = part.strip().rpartition(" = ")
        name = name.split(":")[-1].strip()
        if name in GGML_TO_CPUINFO and value.strip() == "1":
            found.add(name)
    return frozenset(found)


def gpu_backends(system_info: str) -> tuple[str, ...]:
    """The GPU backends the system info lists ("CUDA : ARCHS = 860 | ..."), in order."""
    names = []
    for chunk in system_info.split("|"):
        if " : " in chunk:
            name = chunk.split(" : ")[0].strip()
            if name and name not in ("CPU",) and name not in names:
                names.append(name)
    return tuple(names)


def compare(system_info: str, cpu_flags: frozenset[str]) -> FeatureComparison:
    compiled = compiled_features(system_info)
    machine = frozenset(g for g, flag in GGML_TO_CPUINFO.items() if flag in cpu_flags)
    return FeatureComparison(compiled=compiled, machine=machine, missing=compiled - machine,
                             fragile=compiled & machine & FRAGILE_FEATURES, gpu_backends=gpu_backends(system_info))


def portable(cmp: FeatureComparison) -> bool:
    """Built with the portable CPU flags, or a GPU build (whose CPU flags are the user's own choice)."""
    return cmp.compiled <= PORTABLE_FEATURES or bool(cmp.gpu_backends)


def problems(report: BuildReport, cmp: FeatureComparison, *, cpu_flags: frozenset[str]) -> list[str]:
    """One line each: why this build cannot run here. Empty: it ran."""
    out: list[str] = []
    if cmp.missing:
        out.append("the build uses " + ", ".join(sorted(cmp.missing)) + ", which this CPU does not have "
                   "(it was built on or for another CPU)")
    if report.exit is None:
        out.append(f"loading the model and generating {PROBE_TOKENS} tokens took over {report.timeout_s:.0f} s "
                   f"(stopped during '{report.last_stage}')")
    elif not report.ok:
        during = {"start": "starting", "import": "loading the llama.cpp library", "build": "loading the model",
                  "loaded": "generating"}.get(report.last_stage, report.last_stage)
        out.append(describe(report.exit, what=f"llama.cpp, {during},", cpu_flags=cpu_flags))
    return out


def probe(model: Path, *, python: str | None = None, timeout_s: float = PROBE_TIMEOUT_S,
          tokens: int = PROBE_TOKENS) -> BuildReport:
    """Run the probe child with `python` (the venv's by default) and read what it said."""
    from crew.hardware.cpu import kernel_traps

    argv = [python or sys.executable, "-X", "faulthandler", str(PROBE), str(model), str(tokens)]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, text=True, errors="replace")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return BuildReport(stages=_stages(out), exit=None, timeout_s=timeout_s)
    ex = ServerExit(returncode=proc.returncode, log_tail="\n".join(err.splitlines()[-40:]))
    if ex.faulted:
        ex = ServerExit(ex.returncode, ex.log_tail, kernel_traps(proc.pid))
    return BuildReport(stages=_stages(out), exit=ex, timeout_s=timeout_s)


def _stages(out: str) -> tuple[dict[str, object], ...]:
    stages = []
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "stage" in rec:
            stages.append(rec)
    return tuple(stages)


def nvml_driver() -> str:
    """The NVIDIA driver's version through NVML, or why there is none."""
    try:
        import pynvml
    except ImportError:
        return "pynvml is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"no NVIDIA driver ({exc})"
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        count = pynvml.nvmlDeviceGetCount()
        return f"driver {version.decode() if isinstance(version, bytes) else version}, {count} GPU(s)"
    except pynvml.NVMLError as exc:
        return f"NVML answered but failed: {exc}"
    finally:
        pynvml.nvmlShutdown()
