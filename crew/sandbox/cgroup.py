"""A cgroup v2 of its own for each sandboxed run, where this machine lets us make one.

`memory.max` caps everything the sandbox allocates together (memory, tmpfs pages, memfds, SysV shm),
`pids.max` its processes, and `cgroup.kill` ends every process in it at the end. Where no cgroup can be
made, memory is capped per process only (RLIMIT_AS), and the note says so in every report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from functools import lru_cache
from pathlib import Path

from crew.sandbox.report import SandboxLimits


@lru_cache(maxsize=1)
def _cgroup_parent() -> tuple[Path | None, str]:
    """Where to make each run's cgroup, probed once: our own cgroup v2 folder, or its parent (then the run's
    cgroup is a sibling of ours), whichever we may write to and can have the memory controller in."""
    try:
        own = next(line.split("::", 1)[1].strip() for line in
                   Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines() if line.startswith("0::"))
        mounts = [line.split() for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()]
        root = next(m[4] for m in mounts if m[m.index("-") + 1] == "cgroup2")
    except (OSError, StopIteration, ValueError):
        return None, "no cgroup v2 here: memory is capped per process only (RLIMIT_AS)"
    mine = Path(root + own.rstrip("/"))
    candidates = [mine] + ([mine.parent] if mine != Path(root) else [])
    writable = [c for c in candidates if os.access(c, os.W_OK) and os.access(c / "cgroup.procs", os.W_OK)]
    if not writable:
        return None, "the cgroup v2 is not writable here: memory is capped per process only (RLIMIT_AS)"
    for parent in writable:
        if "memory" in _enable_controllers(parent):
            return parent, ""
    return writable[0], ("a cgroup v2 without the memory controller (a cgroup v1 machine?): memory is capped "
                         "per process only (RLIMIT_AS); the cgroup still ends every process at the end")


def _enable_controllers(parent: Path) -> list[str]:
    """Turn memory and pids on for the children of `parent` where the kernel lets us; what is on."""
    with contextlib.suppress(OSError):  # refused in a folder that holds processes (unless it is the root)
        controllers = (parent / "cgroup.controllers").read_text(encoding="ascii").split()
        enabled = (parent / "cgroup.subtree_control").read_text(encoding="ascii").split()
        wanted = [c for c in ("memory", "pids") if c in controllers and c not in enabled]
        if wanted:
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted), encoding="ascii")
    try:
        return (parent / "cgroup.subtree_control").read_text(encoding="ascii").split()
    except OSError:
        return []


def make_cgroup(limits: SandboxLimits) -> tuple[Path | None, str]:
    parent, note = _cgroup_parent()
    if parent is None:
        return None, note
    path = parent / f"localcrew-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
    except OSError as exc:
        return None, f"cannot make a cgroup here ({exc.strerror}): memory is capped per process only (RLIMIT_AS)"
    for name, value in (("memory.max", limits.memory_bytes), ("memory.swap.max", 0),
                        ("pids.max", limits.max_processes + 8)):
        with contextlib.suppress(OSError):
            (path / name).write_text(str(value), encoding="ascii")
    if (path / "memory.max").exists():
        return path, f"cgroup v2 memory.max {limits.memory_bytes / 1024**3:g} GiB for the whole sandbox"
    return path, note


def kill_cgroup(path: Path) -> None:
    if (path / "cgroup.kill").exists():
        with contextlib.suppress(OSError):
            (path / "cgroup.kill").write_text("1", encoding="ascii")
        return
    for _ in range(20):  # kernels before 5.14: kill what is listed until nothing is
        pids = [int(p) for p in (path / "cgroup.procs").read_text(encoding="ascii").split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def remove_cgroup(path: Path) -> None:
    kill_cgroup(path)
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
