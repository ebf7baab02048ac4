"""Overhead of the sandboxed pytest runner vs plain pytest on the same small suite, same run.

    uv run python benchmarks/bench_sandbox.py [--repeats 7] [--tests 20]

Three ways to run one generated suite (a module and N small tests), interleaved so that load from other
work on the machine hits all three alike; wall-clock medians, best in brackets:
  plain           `python -m pytest -q` in the folder, as a user would type it (plugins autoloaded)
  plain, lean     the same with the plugin set the sandbox uses (autoload off, no cache provider)
  sandboxed       run_pytest(): staging copy, syntax check, import check, namespaces, rlimits, uid drop
The overhead quoted is sandboxed minus "plain, lean": what the containment itself costs. The one-time
probe of what the machine allows (sandbox_mode) is timed separately, as every process pays it once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.sandbox import run_pytest, sandbox_mode  # noqa: E402


def _suite(root: Path, tests: int) -> None:
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    body = "from calc import add\n\n" + "".join(
        f"def test_add_{i}():\n    assert add({i}, 1) == {i + 1}\n\n" for i in range(tests))
    (root / "test_calc.py").write_text(body, encoding="utf-8")


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--tests", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        _suite(ws, args.tests)
        probe_s = _timed(lambda: sandbox_mode())
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ws)]
        lean_env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

        def plain() -> None:
            subprocess.run(argv, cwd=ws, capture_output=True, check=True)

        def lean() -> None:
            subprocess.run(argv, cwd=ws, env=lean_env, capture_output=True, check=True)

        def sandboxed() -> None:
            report = run_pytest(ws)
            assert report.ok and report.passed == args.tests, report.feedback()

        runs: dict[str, list[float]] = {"plain": [], "plain, lean": [], "sandboxed": []}
        for fn in (plain, lean, sandboxed):  # warm the page cache once
            fn()
        for _ in range(args.repeats):
            for name, fn in (("plain", plain), ("plain, lean", lean), ("sandboxed", sandboxed)):
                runs[name].append(_timed(fn))
    print(f"suite: {args.tests} tests, {args.repeats} repeats; mode: {sandbox_mode().describe()}")
    print(f"one-time probe of the sandbox mode: {probe_s * 1000:.0f} ms")
    for name, times in runs.items():
        median_ms, best_ms = statistics.median(times) * 1000, min(times) * 1000
        print(f"  {name:12s} median {median_ms:6.0f} ms  (best {best_ms:.0f})")
    lean_ms = statistics.median(runs["plain, lean"]) * 1000
    box_ms = statistics.median(runs["sandboxed"]) * 1000
    print(f"overhead of the sandbox: {box_ms - lean_ms:+.0f} ms per run "
          f"({box_ms / lean_ms:.2f}x plain, lean)")


if __name__ == "__main__":
    main()
