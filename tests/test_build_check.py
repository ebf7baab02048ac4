"""The set-up self-check and `plan-gpus doctor` (issue 23): a build that dies on a signal is one line and
exit 3 (setup rebuilds it once with the portable flags), and on this machine the doctor's screen is true."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crew.cli import main as plan_gpus
from crew.models.embedded import EMBEDDED_TINY_REF, embedded_model_path
from tests.conftest import ROOT


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_self_check_with_a_python_that_dies_on_sigsegv_is_one_line_and_exit_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stub = _script(tmp_path / "python", 'echo \'{"stage": "import"}\'\nkill -SEGV $$\n')
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    code = plan_gpus(["doctor", "--self-check", "--python", str(stub), "--model", str(model), "--timeout", "30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1
    assert err[0].startswith("self-check: llama.cpp, loading the llama.cpp library, crashed (SIGSEGV)")


def test_self_check_with_a_python_that_fails_otherwise_is_exit_2(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    stub = _script(tmp_path / "python", "echo 'ModuleNotFoundError: No module named llama_cpp' >&2\nexit 1\n")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    code = plan_gpus(["doctor", "--self-check", "--python", str(stub), "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and "exited (exit code 1)" in err and "No module named llama_cpp" in err


def test_a_missing_model_for_the_doctor_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_gpus(["doctor", "--model", str(tmp_path / "absent.gguf")]) == 2
    assert "model file not found" in capsys.readouterr().err


def _fake_uv(tmp_path: Path, check_codes: list[int]) -> tuple[Path, Path]:
    """A `uv` on PATH that records its calls; its `run ... doctor --self-check` answers `check_codes` in turn."""
    calls = tmp_path / "calls.txt"
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(map(str, check_codes)) + "\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _script(bindir / "uv", f"""echo "CMAKE_ARGS=$CMAKE_ARGS :: $*" >> "{calls}"
case "$*" in
  *--self-check*)
    code=$(head -n1 "{codes}"); sed -i 1d "{codes}"
    [ "$code" = 0 ] && echo "self-check: ok" || echo "self-check: llama.cpp crashed (SIGSEGV)" >&2
    exit "$code" ;;
esac
exit 0
""")
    return bindir, calls


def _setup_sync(bindir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", **env}
    e.pop("CMAKE_ARGS", None) if "CMAKE_ARGS" not in env else None
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "sync"], env=e, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_setup_rebuilds_once_with_the_portable_flags_when_the_self_check_says_the_build_is_broken(
        tmp_path: Path) -> None:
    bindir, calls = _fake_uv(tmp_path, [3, 0])
    proc = _setup_sync(bindir)
    assert proc.returncode == 0, proc.stderr
    lines = calls.read_text().splitlines()
    syncs = [ln for ln in lines if ":: sync" in ln]
    assert len(syncs) == 2 and "--reinstall-package llama-cpp-python" in syncs[1]
    assert "-DGGML_NATIVE=OFF" in syncs[1] and "-DGGML_AMX_INT8=OFF" in syncs[1]
    assert sum("--self-check" in ln for ln in lines) == 2
    assert "rebuilding llama-cpp-python once" in proc.stderr


def test_setup_stops_with_exit_2_when_the_rebuilt_build_still_cannot_run(tmp_path: Path) -> None:
    bindir, calls = _fake_uv(tmp_path, [3, 3])
    proc = _setup_sync(bindir)
    assert proc.returncode == 2
    assert "bash scripts/setup.sh doctor" in proc.stderr.splitlines()[-1]
    assert sum(":: sync" in ln for ln in calls.read_text().splitlines()) == 2  # one rebuild, not a loop


def test_setup_keeps_your_own_cmake_args_and_adds_the_portable_cpu_flags_on_a_rebuild(tmp_path: Path) -> None:
    bindir, calls = _fake_uv(tmp_path, [3, 0])
    proc = _setup_sync(bindir, CMAKE_ARGS="-DGGML_CUDA=on")
    assert proc.returncode == 0, proc.stderr
    lines = calls.read_text().splitlines()
    assert "--custom-build" in next(ln for ln in lines if "--self-check" in ln)
    rebuild = [ln for ln in lines if ":: sync" in ln][1]
    assert rebuild.startswith("CMAKE_ARGS=-DGGML_CUDA=on ") and "-DGGML_NATIVE=OFF" in rebuild


@pytest.mark.slow
def test_the_doctor_on_this_machine_loads_the_model_and_says_what_the_build_is() -> None:
    model = embedded_model_path(EMBEDDED_TINY_REF)
    proc = subprocess.run([sys.executable, "-m", "crew.cli", "doctor", "--model", str(model)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    name = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")), "")
    assert f"machine   {name}" in out
    assert "compiled  SSE3 SSSE3 AVX AVX2 F16C FMA BMI2   (portable)" in out  # the build setup.sh makes
    assert "backend compiled in: none (a CPU build)" in out
    assert "NVML" in out and "tokens/s" in out
    assert out.strip().splitlines()[-1] == "verdict: this build runs on this machine"
