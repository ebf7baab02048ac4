"""`backend: auto`: which server runs the models here, and why (said in the plan's notes)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

Which = Callable[[str], str | None]


def choose_backend(setting: str, which: Which = shutil.which) -> tuple[str, str]:
    """(llamacpp | ollama, the reason in words). `auto` takes Ollama when its binary is installed — the
    user already runs it and its models are there — and llama.cpp, which localcrew brings, otherwise."""
    if setting != "auto":
        return setting, f"backend {setting} (gpu_layout.yaml `backend`)"
    found = which("ollama")
    if found:
        return "ollama", (f"backend auto picked Ollama: its binary is installed ({found}); set `backend: "
                          "llamacpp` in gpu_layout.yaml to use llama.cpp instead")
    return "llamacpp", ("backend auto picked llama.cpp (llama-cpp-python, installed with localcrew): no "
                        "`ollama` binary on PATH")
