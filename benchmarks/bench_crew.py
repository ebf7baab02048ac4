"""Set-up time and `crewai run` wall time on the embedded default, measured in one run.

    uv run python benchmarks/bench_crew.py

Set-up is `bash scripts/setup.sh sync` (uv sync against the cached llama-cpp-python wheel; the first,
compiling set-up is reported by scripts/setup.sh itself). The crew runs in a temporary copy of the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    t0 = time.perf_counter()
    subprocess.run(["bash", "scripts/setup.sh", "sync"], cwd=ROOT, check=True, capture_output=True)
    setup_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("pyproject.toml", "uv.lock", "README.md", "agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
            shutil.copy(ROOT / name, work / name)
        env = {**os.environ, "UV_NO_SYNC": "1", "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv"),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        t1 = time.perf_counter()
        proc = subprocess.run(["crewai", "run"], cwd=work, env=env, capture_output=True, text=True)
        run_s = time.perf_counter() - t1
        report = next((work / "runs").glob("*/report.md"), None)
        verdict = next((ln for ln in report.read_text().splitlines() if ln.startswith("**Verdict")), "?") \
            if report else "no report"
    print(f"setup (cached wheel):           {setup_s:7.1f} s")
    print(f"crewai run, embedded default:   {run_s:7.1f} s  exit {proc.returncode}  {verdict}")


if __name__ == "__main__":
    main()
