"""`gpu_check.sh prepare`: everything the CUDA machine needs, in one ignored folder of at most 64 MiB.

The device has no network, so it gets:
- `llama.cpp.tar.gz`: the llama.cpp that llama-cpp-python vendors (the same commit its ctypes bindings are
  written for), trimmed to what the CUDA build of libllama and llama-server reads: the CMake files,
  include/, src/, ggml/ with only its CPU and CUDA backends, the vendored libraries (nlohmann json,
  cpp-httplib, ...), common/, the C/C++ and CMake files of tools/ (tools/CMakeLists.txt configures every
  tool once the server is on; only llama-server is built), and scripts/ui-assets.cmake, which writes the
  empty UI table the server links when the web UI is off — not the web UI's sources (8.5 MiB of Svelte);
- `site.tar.gz`: the Python packages the device's Python 3.12 imports — llama-cpp-python's Python files (no
  library: the build provides it) and cp312 manylinux wheels, installed by uv at the versions uv.lock pins;
- `manifest.json`: versions, the llama.cpp commit, and the sizes.

The source comes from uv's cache of the llama-cpp-python sdist (the project builds it from source), found
by the installed version; `--llama-src DIR` names another copy of `vendor/llama.cpp`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / ".gpu_check"
LIMIT_BYTES = 64 * 1024 * 1024
PYTHON_VERSION = "3.12"
PLATFORM = "x86_64-manylinux_2_28"  # CUDA 13 needs glibc 2.28 or newer anyway
# What the device imports: gguf (writer; numpy, pyyaml), pynvml, crew's estimator (pyyaml for the catalog),
# and llama_cpp's package import (numpy, typing_extensions, jinja2 + markupsafe, diskcache).
PACKAGES = ("numpy", "gguf", "pyyaml", "nvidia-ml-py", "typing-extensions", "jinja2", "markupsafe", "diskcache")
_KEEP_BACKENDS = frozenset({"ggml-cpu", "ggml-cuda"})
_TOP_FILES = frozenset({"CMakeLists.txt", "LICENSE"})
_TOP_DIRS = frozenset({"cmake", "include", "src", "ggml", "vendor", "common"})
_SCRIPTS = frozenset({"scripts/ui-assets.cmake"})  # run at build time by tools/ui (the server's UI table)
# What CMake and the compiler read under tools/: sources, headers, CMake files and templates (ui.cpp.in).
_TOOL_SUFFIXES = frozenset({".c", ".cpp", ".h", ".hpp", ".cmake", ".in"})
_TOOL_SKIP_DIRS = frozenset({"tests", "bench"})
# Paths the CUDA build of libllama and llama-server cannot do without (tests/test_gpu_check.py checks the
# tarball has them, and that the trimmed tree configures and has every source `ninja llama-server` reads).
REQUIRED = ("CMakeLists.txt", "cmake/build-info.cmake", "include/llama.h", "src/CMakeLists.txt", "src/llama.cpp",
            "ggml/CMakeLists.txt", "ggml/src/CMakeLists.txt", "ggml/src/ggml-cuda/CMakeLists.txt",
            "ggml/src/ggml-cuda/ggml-cuda.cu", "ggml/src/ggml-cpu/CMakeLists.txt", "vendor/CMakeLists.txt",
            # llama-server:
            "common/CMakeLists.txt", "common/build-info.cpp.in", "common/common.cpp", "tools/CMakeLists.txt",
            "tools/server/CMakeLists.txt", "tools/server/server.cpp", "tools/server/server-context.cpp",
            "tools/mtmd/CMakeLists.txt", "tools/mtmd/mtmd.cpp", "tools/ui/CMakeLists.txt", "tools/ui/ui.cpp.in",
            "tools/ui/ui.h.in", "scripts/ui-assets.cmake", "vendor/cpp-httplib/CMakeLists.txt",
            "vendor/cpp-httplib/httplib.h", "vendor/nlohmann/json.hpp")


def keep(rel: str) -> bool:
    """Whether a path of the llama.cpp tree (relative, '/'-separated) goes into the device's tarball."""
    parts = PurePosixPath(rel).parts
    if not parts or any(p in (".git", "__pycache__") for p in parts):
        return False
    if len(parts) == 1:
        return parts[0] in _TOP_FILES
    if parts[0] == "scripts":
        return rel in _SCRIPTS
    if parts[0] == "tools":
        suffix = PurePosixPath(rel).suffix
        return ((parts[-1] == "CMakeLists.txt" or suffix in _TOOL_SUFFIXES)
                and not _TOOL_SKIP_DIRS.intersection(parts[2:-1]))
    if parts[0] not in _TOP_DIRS:
        return False
    if len(parts) > 3 and parts[:2] == ("ggml", "src") and parts[2].startswith("ggml-"):
        return parts[2] in _KEEP_BACKENDS  # a backend folder; files like ggml/src/ggml-quants.c stay
    return True


@dataclass(frozen=True)
class Sizes:
    files: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    def problem(self, limit_bytes: int = LIMIT_BYTES) -> str | None:
        if self.total_bytes <= limit_bytes:
            return None
        biggest = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(self.files.items(), key=lambda kv: -kv[1]))
        return f"the bundle is {self.total_bytes / 2**20:.1f} MiB, over {limit_bytes / 2**20:.0f} MiB ({biggest})"


def pins(lock_text: str, names: tuple[str, ...] = PACKAGES) -> list[str]:
    """`name==version` for each of `names`, as uv.lock pins them."""
    versions = {p["name"]: p["version"] for p in tomllib.loads(lock_text)["package"]}
    missing = [n for n in names if n not in versions]
    if missing:
        raise KeyError(f"uv.lock pins no {', '.join(missing)}")
    return [f"{n}=={versions[n]}" for n in names]


def find_llama_sdist(version: str, cache_dirs: list[Path]) -> Path:
    """The unpacked llama-cpp-python sdist (its `src/`, which holds llama_cpp/ and vendor/llama.cpp)."""
    for cache in cache_dirs:
        for cand in sorted(cache.glob(f"sdists-v*/pypi/llama-cpp-python/{version}/*/src")):
            if (cand / "vendor/llama.cpp/CMakeLists.txt").is_file() and (cand / "llama_cpp/llama_cpp.py").is_file():
                return cand
    raise FileNotFoundError(f"no llama-cpp-python {version} sdist in {', '.join(map(str, cache_dirs))}: run "
                            "`bash scripts/setup.sh sync` (it builds llama-cpp-python from source), or pass "
                            "--llama-src")


def llama_commit(sdist: Path) -> str:
    head = sdist / ".git/modules/vendor/llama.cpp/HEAD"
    return head.read_text().strip() if head.is_file() else "unknown"


def pack_tree(src: Path, dest: Path, arcname: str, select: Callable[[str], bool] | None = None) -> int:
    """tar.gz the files under `src` that `select(rel)` keeps (all if None); returns the file count."""
    count = 0
    with tarfile.open(dest, "w:gz", compresslevel=9) as tf:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src).as_posix()
            if path.is_dir() or path.is_symlink() or (select is not None and not select(rel)):
                continue
            tf.add(path, arcname=f"{arcname}/{rel}" if arcname else rel, recursive=False)
            count += 1
    return count


def install_site(site: Path, sdist: Path, requirements: list[str]) -> None:
    """cp312 wheels unpacked into `site` by uv (no network on the device: no pip there), plus llama_cpp/."""
    uv = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    subprocess.run([uv, "pip", "install", "--quiet", "--target", str(site), "--python-version", PYTHON_VERSION,
                    "--python-platform", PLATFORM, "--only-binary", ":all:", "--no-deps", *requirements],
                   check=True)
    shutil.copytree(sdist / "llama_cpp", site / "llama_cpp", ignore=shutil.ignore_patterns("server", "lib",
                                                                                            "__pycache__"))
    for junk in ("bin",):  # console scripts of the wheels: nothing runs them
        shutil.rmtree(site / junk, ignore_errors=True)


def prepare(bundle: Path, sdist: Path, requirements: list[str], version: str) -> dict[str, Any]:
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    n_src = pack_tree(sdist / "vendor/llama.cpp", bundle / "llama.cpp.tar.gz", "llama.cpp", keep)
    with tempfile.TemporaryDirectory() as tmp:
        install_site(Path(tmp) / "site", sdist, requirements)
        n_site = pack_tree(Path(tmp) / "site", bundle / "site.tar.gz", "")
    sizes = Sizes({p.name: p.stat().st_size for p in bundle.iterdir()})
    manifest: dict[str, Any] = {
        "llama_cpp": {"tarball": "llama.cpp.tar.gz", "commit": llama_commit(sdist), "files": n_src,
                      "from": f"llama-cpp-python {version} (vendor/llama.cpp)"},
        "site": {"tarball": "site.tar.gz", "files": n_site, "python": PYTHON_VERSION, "platform": PLATFORM,
                 "packages": requirements + [f"llama-cpp-python=={version} (Python files only)"]},
        "bytes": sizes.files | {"total": sizes.total_bytes},
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    problem = Sizes({p.name: p.stat().st_size for p in bundle.iterdir()}).problem()
    if problem:
        raise SystemExit(f"gpu_check prepare: {problem}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    from importlib.metadata import version as installed

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-src", type=Path, default=None,
                    help="an unpacked llama-cpp-python sdist (the folder with llama_cpp/ and vendor/)")
    ap.add_argument("--bundle", type=Path, default=BUNDLE)
    args = ap.parse_args(argv)
    version = installed("llama-cpp-python")
    caches = [Path(p) for p in (os.environ.get("UV_CACHE_DIR"), Path.home() / ".cache/uv") if p]
    sdist = args.llama_src or find_llama_sdist(version, caches)
    requirements = pins((ROOT / "uv.lock").read_text(encoding="utf-8"))
    manifest = prepare(args.bundle, sdist, requirements, version)
    out = io.StringIO()
    for name, n in manifest["bytes"].items():
        print(f"  {name:<18} {n / 2**20:7.2f} MiB", file=out)
    print(f"gpu_check prepare: {args.bundle} (llama.cpp {manifest['llama_cpp']['commit'][:12]}, "
          f"limit {LIMIT_BYTES / 2**20:.0f} MiB)\n{out.getvalue()}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
