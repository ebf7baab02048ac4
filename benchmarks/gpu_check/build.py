"""Build llama.cpp's CUDA backend on the device, in one cmake + ninja run: libllama (the Python bindings,
llama-cpp-python of the same commit, load it through LLAMA_CPP_LIB_PATH) and llama-server (what the crew
serves with), only for the card's compute capability, with ninja on every core.

The configure is crew/models/server_binary.py's — its trimmed, server-on flags after the project's portable CPU
flags (scripts/setup.sh) — with the CUDA flags where a user's CMAKE_ARGS go, and shared libraries: the bindings
need libllama.so (set-up's CPU server is static; this one links the same build's libraries). ninja keeps going
past a failed file (-k 0), so a server that does not build still leaves libllama for the library cases.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from crew.models.server_binary import BINARY as SERVER
from crew.models.server_binary import cmake_args as server_cmake_args

# Flash-attention vector kernels for the two KV types the check loads (llama.cpp's default adds q4_0, bf16).
FA_QUANTS = "f16-f16;q8_0-q8_0"
# scripts/setup.sh's portable_cpu_args, which set-up passes to the CPU server's build (tests/test_gpu_check.py
# checks they are the same).
PORTABLE_CPU_ARGS = ("-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON "
                     "-DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")
LIBRARY = "llama"  # ninja's target for libllama.so
TARGETS = (LIBRARY, SERVER)


def cuda_architecture(compute_capability: str) -> str:
    """'9.0' → '90-real': device code for this card only, no PTX for others. (ggml-cuda's CMakeLists turns
    a plain 12X into 12Xa itself.)"""
    major, _, minor = compute_capability.strip().partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"not a compute capability: {compute_capability!r}")
    return f"{major}{minor}-real"


def cuda_args(architecture: str) -> tuple[str, ...]:
    """CUDA for this card only; no NCCL (one GPU), no compression of the device code (it only costs time),
    flash-attention kernels for the KV types the check loads."""
    return ("-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={architecture}", "-DGGML_CUDA_NCCL=OFF",
            "-DGGML_CUDA_COMPRESSION_MODE=none", f"-DGGML_CUDA_FA_QUANTS={FA_QUANTS}")


def cmake_args(src: Path, build: Path, architecture: str) -> list[str]:
    """Configure as set-up configures llama-server (crew/models/server_binary.cmake_args: no tests, examples,
    app, web UI or OpenSSL; tools and server on), with the CUDA flags as the user's, then shared libraries."""
    return ["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja",
            *server_cmake_args(" ".join(cuda_args(architecture)), PORTABLE_CPU_ARGS), "-DBUILD_SHARED_LIBS=ON"]


def ninja_args(build: Path, jobs: int) -> list[str]:
    """Both targets in one run; -k 0: a file that fails to compile stops only what depends on it."""
    return ["ninja", "-C", str(build), "-j", str(jobs), "-k", "0", *TARGETS]


@dataclass(frozen=True)
class BuildResult:
    ok: bool              # libllama built: the library cases can run
    lib_dir: Path | None  # where libllama.so is (build/bin)
    seconds: float
    log_tail: str         # the last lines of cmake's and ninja's output
    reason: str = ""      # why not ok
    server: Path | None = None  # build/bin/llama-server, when it built
    server_reason: str = ""     # why not, in one line


def unpack(tarball: Path, dest: Path, stamp: str) -> Path:
    """Extract the bundled source unless this `stamp` (the commit) is already there, whole; returns its root.
    A kept source keeps ninja's build of it valid, so a second run on the same machine rebuilds nothing."""
    root, marker = dest / "llama.cpp", dest / ".unpacked"
    if not marker.exists() or marker.read_text() != stamp:
        shutil.rmtree(root, ignore_errors=True)
        with tarfile.open(tarball) as tf:
            tf.extractall(dest, filter="data")
        marker.write_text(stamp)
    return root


class Build:
    """cmake + ninja in the background (the GGUFs are written meanwhile); `wait` enforces the deadline."""

    def __init__(self, src: Path, build: Path, architecture: str, jobs: int,
                 env: dict[str, str] | None = None) -> None:
        self.build_dir = build
        self.log_path = build.parent / "build.log"
        build.mkdir(parents=True, exist_ok=True)
        script = " && ".join(" ".join(_quote(a) for a in args)
                             for args in (cmake_args(src, build, architecture), ninja_args(build, jobs)))
        self.started = time.monotonic()
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 — closed in wait()
        self._proc = subprocess.Popen(["bash", "-c", script], stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True, env=env)

    def wait(self, deadline: float) -> BuildResult:
        """Wait until the build ends or `deadline` (time.monotonic()); a build past it is stopped. Each target
        is judged on its own: built when ninja has nothing left to do for it."""
        try:
            rc = self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            stopped = ""
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGTERM)  # its own session: cmake, ninja and every nvcc
            self._proc.wait()  # ninja removes the outputs of the commands it was running
            rc, stopped = -1, "did not finish within its share of the time budget"
        self._log.close()
        seconds = time.monotonic() - self.started
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        tail = log_tail(text)
        bin_dir = self.build_dir / "bin"
        lib_ok = (bin_dir / "libllama.so").exists() and (rc == 0 or up_to_date(self.build_dir, LIBRARY))
        server_ok = (bin_dir / SERVER).exists() and (rc == 0 or up_to_date(self.build_dir, SERVER))
        reason = server_reason = ""
        if not lib_ok:
            reason = (f"the build {stopped}" if stopped else f"the build failed (exit {rc})" if rc
                      else f"the build ended but {bin_dir}/libllama.so is missing")
        if not server_ok:
            server_reason = (f"the {SERVER} build {stopped}" if stopped else
                             f"the {SERVER} build failed: {first_error(text)}" if rc
                             else f"the build ended but {bin_dir}/{SERVER} is missing")
        return BuildResult(ok=lib_ok, lib_dir=bin_dir if lib_ok else None, seconds=seconds, log_tail=tail,
                           reason=reason, server=bin_dir / SERVER if server_ok else None,
                           server_reason=server_reason)


def up_to_date(build: Path, target: str) -> bool:
    """ninja has nothing to do for `target` (a dry run; after the build process has ended)."""
    if not (build / "build.ninja").exists() or shutil.which("ninja") is None:
        return False
    proc = subprocess.run(["ninja", "-C", str(build), "-n", target], capture_output=True, text=True, check=False,
                          timeout=60)
    return proc.returncode == 0 and "no work to do" in proc.stdout


def log_tail(log_text: str, lines: int = 60, failure_lines: int = 30) -> str:
    """The log's last lines, after ninja's first failure when that is earlier (with -k 0 it goes on, and the
    first error would scroll away)."""
    all_lines = log_text.splitlines()
    failed = next((i for i, line in enumerate(all_lines) if line.startswith("FAILED:")), None)
    tail = all_lines[-lines:]
    if failed is None or failed >= len(all_lines) - lines:
        return "\n".join(tail)
    return "\n".join([*all_lines[failed:failed + failure_lines], "[...]", *tail])


def first_error(log_text: str, width: int = 300) -> str:
    """The first failure of a build log in one line: ninja's FAILED target and the compiler's first error."""
    lines = log_text.splitlines()
    failed = next((i for i, line in enumerate(lines) if line.startswith("FAILED:")), None)
    if failed is None:
        errors = [line for line in lines if "error" in line.lower()]
        return (errors[0].strip() if errors else "no error line in the log")[:width]
    target = lines[failed].removeprefix("FAILED:").strip().split(" ")[0]
    error = next((line.strip() for line in lines[failed + 1:] if "error" in line.lower()), "")
    return f"{target}: {error}"[:width] if error else target[:width]


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
