"""Which of the processes NVML reports on a GPU are our model servers, from their command lines.

A server started by crew.serving runs `python -m llama_cpp.server --port N` (or `--config_file gpuK.json`)
or `ollama serve` with OLLAMA_HOST; the command line is enough to name it. Other processes (the desktop,
another user's job) are shown as "other" with their memory, because they eat into the plan's headroom too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crew.units import gib


def read_cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone, or another user's process in a container without /proc access
        return None
    return tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)


def server_label(argv: tuple[str, ...] | None) -> str | None:
    """'llama.cpp :8081', 'llama.cpp gpu0', 'ollama' for our servers; None for anything else."""
    if not argv:
        return None
    if "llama_cpp.server" in argv:
        if "--port" in argv and argv.index("--port") + 1 < len(argv):
            return f"llama.cpp :{argv[argv.index('--port') + 1]}"
        if "--config_file" in argv and argv.index("--config_file") + 1 < len(argv):
            return f"llama.cpp {Path(argv[argv.index('--config_file') + 1]).stem}"
        return "llama.cpp"
    if Path(argv[0]).name.startswith("ollama"):
        return "ollama"
    return None


def describe(processes: tuple[tuple[int, int | None], ...],
             cmdline: Callable[[int], tuple[str, ...] | None] = read_cmdline) -> list[str]:
    """One short phrase per process: our server's label or 'other', with pid and memory."""
    out = []
    for pid, used in processes:
        label = server_label(cmdline(pid)) or "other"
        mem = f" {gib(used)}" if used is not None else ""
        out.append(f"{label} (pid {pid}){mem}")
    return out
