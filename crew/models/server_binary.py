"""llama.cpp's own server (`llama-server`): where the built binary is, and how set-up builds and caches it.

It is built from the llama.cpp source that the pinned llama-cpp-python sdist vendors (vendor/llama.cpp), so
the server and the in-process library are the same llama.cpp commit, and nothing is downloaded but that
sdist (from uv's cache, else PyPI). The binary is static (BUILD_SHARED_LIBS=OFF: nothing to find at run
time) and cached under ~/.cache/localcrew/llama-server/<llama-cpp-python version>-<flags hash>/, so a
second set-up, or another checkout on the same machine, links the cached binary in seconds; a change of
version or of CMAKE_ARGS (a CUDA build) builds again. The venv gets a link, .venv/bin/llama-server.

`find_server_binary` is what serving asks; LOCALCREW_LLAMA_SERVER overrides it (a path, or `none` to serve
with llama-cpp-python's Python server instead).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from crew.errors import BuildError

BINARY = "llama-server"
ENV_OVERRIDE = "LOCALCREW_LLAMA_SERVER"
# Only what the server needs: no tests, examples, other tools, web UI (its assets would be fetched from a
# bucket at build time), no OpenSSL (it listens on loopback; TLS is the fleet relay's job).
TRIM_ARGS = ("-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF",
             "-DLLAMA_OPENSSL=OFF", "-DCMAKE_BUILD_TYPE=Release")
# Last, so that no CMAKE_ARGS written for llama-cpp-python's library build (which turns tools off) undoes them.
ESSENTIAL_ARGS = ("-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
                  "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF")


def find_server_binary(environ: dict[str, str] | None = None, prefix: str | None = None) -> str | None:
    """The llama-server to serve with, or None (serve with llama-cpp-python's server)."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_OVERRIDE, "").strip()
    if override.lower() in ("none", "off", "0", "python"):
        return None
    if override:
        return override  # checked when it starts: a wrong path is one line there
    path = Path(prefix or sys.prefix) / "bin" / BINARY
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


@dataclass(frozen=True)
class BuildPlan:
    source_dir: Path
    version: str
    cmake_args: tuple[str, ...]
    cache_dir: Path

    @property
    def key(self) -> str:
        digest = hashlib.sha256("\0".join(self.cmake_args).encode()).hexdigest()[:12]
        return f"{self.version}-{digest}"

    @property
    def binary(self) -> Path:
        return self.cache_dir / self.key / BINARY


def cache_root(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "localcrew" / BINARY


def cmake_args(user_args: str, portable_args: str) -> tuple[str, ...]:
    """Ours, the portable CPU flags, the user's (a later -D wins: CUDA on, say), then what a server build
    needs. The user's CPU flags are kept too, as for the library (the self-check catches a native build)."""
    return (*TRIM_ARGS, *shlex.split(portable_args), *shlex.split(user_args), *ESSENTIAL_ARGS)


def vendored_source(version: str, uv_cache: Path | None) -> Path | None:
    """vendor/llama.cpp of the pinned sdist, unpacked in uv's cache when uv built the wheel there."""
    if uv_cache is None:
        return None
    for found in sorted(uv_cache.glob(f"sdists-v*/pypi/llama-cpp-python/{version}/*/src/vendor/llama.cpp")):
        if (found / "tools" / "server").is_dir():
            return found
    return None


def build(plan: BuildPlan, *, jobs: int, log: Path, say: object = print) -> Path:
    """Configure and build llama-server into the cache; returns the binary. Raises BuildError (one line)."""
    out = plan.binary
    if out.is_file():
        return out
    work = plan.cache_dir / f"{plan.key}.build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.monotonic()
    with log.open("w") as fh:
        for cmd in (["cmake", "-S", str(plan.source_dir), "-B", str(work), *plan.cmake_args],
                    ["cmake", "--build", str(work), "-j", str(jobs), "--target", BINARY]):
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
            if rc != 0:
                raise BuildError(f"building {BINARY} failed ({cmd[1]} {cmd[2]} exited {rc})", where=str(log),
                                 fix="read the end of that log; `LOCALCREW_LLAMA_SERVER=none` serves with "
                                     "llama-cpp-python's server meanwhile")
    built = work / "bin" / BINARY
    if not built.is_file():
        raise BuildError(f"the build finished without {built}", where=str(log), fix="read the end of that log")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    shutil.copy2(built, tmp)
    tmp.replace(out)  # atomic: a half-copied binary is never taken from the cache
    shutil.rmtree(work, ignore_errors=True)
    if callable(say):
        say(f"setup: built {BINARY} in {time.monotonic() - start:.0f} s ({out})")
    return out


def link_into(venv_bin: Path, binary: Path) -> Path:
    link = venv_bin / BINARY
    tmp = venv_bin / f".{BINARY}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(binary)
    tmp.replace(link)
    return link


def main(argv: list[str]) -> int:
    """`python -m crew.models.server_binary <uv cache dir>`: build (or take from the cache) and link."""
    import importlib.metadata

    version = importlib.metadata.version("llama_cpp_python")
    uv_cache = Path(argv[0]) if argv and argv[0] else None
    source = Path(os.environ["LOCALCREW_LLAMA_SRC"]) if os.environ.get("LOCALCREW_LLAMA_SRC") else \
        vendored_source(version, uv_cache)
    plan_args = cmake_args(os.environ.get("LOCALCREW_USER_CMAKE_ARGS", ""),
                           os.environ.get("LOCALCREW_PORTABLE_CMAKE_ARGS", ""))
    plan = BuildPlan(source or Path("."), version, plan_args, cache_root())
    if source is None and not plan.binary.is_file():
        print(f"setup: the llama.cpp source of llama-cpp-python {version} is not in uv's cache ({uv_cache}); "
              "set LOCALCREW_LLAMA_SRC to its vendor/llama.cpp", file=sys.stderr)
        return 2
    try:
        if not plan.binary.is_file():
            print(f"setup: building {BINARY} from llama-cpp-python {version}'s llama.cpp "
                  f"(~5 min on 2 cores, once; cached in {plan.binary.parent})", flush=True)
        binary = build(plan, jobs=os.cpu_count() or 2, log=plan.cache_dir / f"{plan.key}.log")
    except BuildError as err:
        print(f"setup: {err.one_line()}", file=sys.stderr)
        return 2
    link = link_into(Path(sys.prefix) / "bin", binary)
    print(f"setup: {BINARY} ready ({link} -> {binary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
