"""A whole crew run on the Ollama backend, against the local server that follows Ollama's API.

A real Ollama is not available here: `ollama` on PATH is tests/fake_ollama.py in `serve` mode. What runs for
real is ours: plan → `ollama serve` spec with the planned env → start → pull with progress → warm-up →
residency → the crew through Ollama's /v1 endpoint → real pytest → report.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

REPLY = """```python
# file: add.py
def add(a, b):
    return a + b
```

```python
# file: test_add.py
from add import add


def test_add():
    assert add(2, 3) == 5
```"""


def test_crew_runs_on_the_ollama_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crew.config import load_project
    from crew.run.workflow import run

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "ollama"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'fake_ollama.py'} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_OLLAMA_LIBRARY", "qwen2.5-coder:7b,llama3.1:8b")
    monkeypatch.setenv("FAKE_OLLAMA_REPLY", REPLY)
    agents = yaml.safe_load((ROOT / "agents.yaml").read_text())
    for name, a in agents.items():
        a.update(llm="ollama/llama3.1:8b" if name in ("manager", "documentation") else "ollama/qwen2.5-coder:7b",
                 fallbacks=[], num_ctx=8192)
    (tmp_path / "agents.yaml").write_text(yaml.safe_dump(agents))
    # The plumbing is what is tested: the task states no example, and the manager's assumed examples (which the
    # fake server answers with REPLY's own assert) would add a test round of their own.
    tasks = yaml.safe_load((ROOT / "tasks.yaml").read_text())
    tasks["workflow"]["assumed_examples"] = 0
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(tasks, sort_keys=False))
    (tmp_path / "gpu_layout.yaml").write_text(yaml.safe_dump({
        "backend": "ollama", "simulate": True, "base_port": 12800, "kv_type": "q8_0",
        "gpus": [{"name": "RTX 3090", "memory_gib": 24, "uuid": "GPU-3090-aaaa"}]}))
    lines: list[str] = []
    result = run(load_project(tmp_path), task="Write add.py with `add(a, b)`.", say=lines.append)
    assert result.ok and result.rounds == 1, result.report_path.read_text()
    report = result.report_path.read_text()
    assert "**Verdict:** PASS" in report and "; 1 passed" in report
    assert (result.run_dir / "code" / "add.py").exists()
    log = (result.run_dir / "servers" / "gpu0.log").read_text()
    assert "Listening on 127.0.0.1:" in log
    assert any("(simulated)" in ln for ln in lines)
