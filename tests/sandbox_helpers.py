"""What the sandbox tests share: quick limits, a workspace from a dict of files, and a look for survivors."""

from __future__ import annotations

from pathlib import Path

from crew.sandbox import SandboxLimits

QUICK = SandboxLimits(wall_timeout_s=30)
# Code that fails its one test: what a forged verdict would have to turn into a pass.
WRONG = {"calc.py": "def add(a, b):\n    return a - b\n",
         "test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"}


def workspace(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (how we look for survivors)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found
