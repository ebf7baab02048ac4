"""Build llama.cpp's CUDA backend on the device: only libllama and the ggml libraries it links, only for the
card's compute capability, with ninja on every core. The Python bindings (llama-cpp-python, same commit)
then load it through LLAMA_CPP_LIB_PATH, so no llama.cpp program is built at all.
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

# Flash-attention vector kernels for the two KV types the check loads (llama.cpp's default adds q4_0, bf16).
FA_QUANTS = "f16-f16;q8_0-q8_0"


def cuda_architecture(compute_capability: str) -> str:
    """'9.0' → '90-real': device code for this card only, no PTX for others. (ggml-cuda's CMakeLists turns
    a plain 12X into 12Xa itself.)"""
    major, _, minor = compute_capability.strip().partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"not a compute capability: {compute_capability!r}")
    return f"{major}{minor}-real"


def cmake_args(src: Path, build: Path, architecture: str) -> list[str]:
    """Configure for libllama + ggml-cuda only. Each OFF is a part of llama.cpp this check does not need and
    that would cost build time or want the network (NCCL, OpenSSL, the web UI); no compression of the
    device code either (it only costs time here)."""
    return ["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=ON", "-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={architecture}",
            "-DGGML_CUDA_NCCL=OFF", "-DGGML_CUDA_COMPRESSION_MODE=none", f"-DGGML_CUDA_FA_QUANTS={FA_QUANTS}",
            "-DLLAMA_BUILD_COMMON=OFF",
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_OPENSSL=OFF"]


def ninja_args(build: Path, jobs: int) -> list[str]:
    return ["ninja", "-C", str(build), "-j", str(jobs), "llama"]


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    lib_dir: Path | None  # where libllama.so is (build/bin)
    seconds: float
    log_tail: str         # the last lines of cmake's and ninja's output
    reason: str = ""      # why not ok


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
        """Wait until the build ends or `deadline` (time.monotonic()); a build past it is stopped."""
        try:
            rc = self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            reason = "" if rc == 0 else f"the build failed (exit {rc})"
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGTERM)  # its own session: cmake, ninja and every nvcc
            self._proc.wait()
            rc, reason = -1, "the build did not finish within its share of the time budget"
        self._log.close()
        seconds = time.monotonic() - self.started
        tail = "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-60:])
        lib = self.build_dir / "bin"
        ok = rc == 0 and (lib / "libllama.so").exists()
        if rc == 0 and not ok:
            reason = f"the build ended but {lib}/libllama.so is missing"
        return BuildResult(ok=ok, lib_dir=lib if ok else None, seconds=seconds, log_tail=tail, reason=reason)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
