"""This machine's CPU as the llama.cpp build sees it: its name and instruction-set flags (/proc/cpuinfo), and
the kernel's trap lines for a process that faulted (the kernel log, where this user may read it).

Adapters only (they read files and run `dmesg`); what the flags mean is decided in crew.models.build_check
and crew.hardware.crash.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    model_name: str
    flags: frozenset[str]
    cores: int


def read_cpuinfo(path: Path = CPUINFO) -> CpuInfo:
    """The first processor's name and flags, and how many processors are listed. Unknown on a machine
    without /proc/cpuinfo (not Linux): an empty name and no flags."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuInfo(model_name="", flags=frozenset(), cores=0)
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    return CpuInfo(model_name=name.group(1).strip() if name else "",
                   flags=frozenset(flags.group(1).split()) if flags else frozenset(),
                   cores=len(re.findall(r"^processor\s*:", text, re.MULTILINE)))


def kernel_traps(pid: int, *, timeout_s: float = 2.0) -> str:
    """The kernel's last trap line for `pid` ("traps: python[pid] general protection fault ... in
    libggml-cpu.so.0[...]"), or "" when there is none or the kernel log cannot be read (most users may not
    read it; that is fine: the log's faulthandler frames say less, but still something)."""
    dmesg = shutil.which("dmesg")
    if dmesg is None:
        return ""
    try:
        out = subprocess.run([dmesg], capture_output=True, text=True, timeout=timeout_s, check=False,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return trap_line_for(out, pid)


# A crash usually happens in one of the process's threads, and the kernel names the thread id, not the pid.
# Linux hands thread ids out in sequence after the pid, so a trap whose id lies just above the pid is taken
# for one of its threads (a busy machine could hand that range to another process: the line is a hint).
_THREAD_ID_SPAN = 4096
_TRAP = re.compile(r"\[(\d+)\][: ]")


def trap_line_for(kernel_log: str, pid: int) -> str:
    """Pure: the last trap/segfault line of `kernel_log` that belongs to `pid` or one of its threads."""
    found = ""
    for line in kernel_log.splitlines():
        if "traps:" not in line and "segfault" not in line:
            continue
        m = _TRAP.search(line.split("]", 1)[-1] if line.startswith("[") else line)
        if m and pid <= int(m.group(1)) < pid + _THREAD_ID_SPAN:
            found = line.strip()
    return found
