"""The parent's side of a sandboxed run: stage a copy, start the inside, watch it, read back its events.

Containment, outermost first (the inside is the `inside/` package):

- a staging copy of the workspace in a fresh temp folder, without the files no agent may write
  (`crew/sandbox/names.py`); a test can never alter the workspace itself (`stage.py`);
- a cgroup v2 of its own where this machine lets us make one: `memory.max` for everything inside,
  `pids.max`, and `cgroup.kill` at the end (`cgroup.py`);
- util-linux `unshare`: network (only a down loopback), PID, mount and IPC namespaces; the supervisor is
  PID 1, so when it ends everything inside ends, whatever a test did with `setsid` or its death signal
  (`modes.py`);
- a wall-clock limit: the parent kills the supervisor (and waits until it is gone) and the cgroup;
- a scrubbed environment (no API keys or tokens; HOME and TMPDIR inside the stage), stdin = /dev/null,
  captured output capped (head and tail kept) (`process.py`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from crew.sandbox.cgroup import make_cgroup, remove_cgroup
from crew.sandbox.modes import SandboxMode, candidate_modes
from crew.sandbox.process import processes_of, supervise
from crew.sandbox.report import SandboxLimits
from crew.sandbox.stage import STAGE_NAME, boot_command, chown_tree, copy_inside, remove_tree, stage_copy
from crew.sandbox.verdict import parse_events


@dataclass(frozen=True)
class Launched:
    mode: SandboxMode
    rc: int                                  # unshare's (or the supervisor's) own exit status
    timed_out: bool
    output: str
    events: list[dict[str, Any]]
    refused: tuple[str, ...]                 # files left out of the staged copy, and why
    cgroup_note: str
    wall_s: float = field(default=0.0)


@lru_cache(maxsize=8)
def sandbox_mode(python: str = sys.executable) -> SandboxMode:
    """The most contained launch mode that works on this machine with this interpreter (probed once)."""
    failures = []
    for mode in candidate_modes():
        with tempfile.TemporaryDirectory(prefix="localcrew-probe-") as tmp:
            (Path(tmp) / "ws").mkdir()
            try:
                run = launch(Path(tmp) / "ws", "probe", [], SandboxLimits(wall_timeout_s=30), python, mode)
            except OSError as exc:
                failures.append(f"{' '.join(mode.prefix[:1]) or 'plain'}: {exc}")
                continue
        if any(e.get("e") == "probe" for e in run.events) and not run.timed_out:
            if failures:
                return SandboxMode(mode.prefix, mode.mount, mode.drop_uid, mode.fresh_userns,
                                   note="better modes failed: " + "; ".join(failures)[:300])
            return mode
        last_line = run.output.strip().splitlines()[-1][:150] if run.output.strip() else ""
        failures.append(last_line or f"exit {run.rc}")
    from crew.errors import WorkflowError

    raise WorkflowError("the test sandbox cannot start python in any mode", where=python,
                        fix="check that this interpreter runs and has pytest: " + "; ".join(failures)[:400])


def launch(workspace: Path, task: str, args: list[str], limits: SandboxLimits, python: str,
           mode: SandboxMode) -> Launched:
    """Stage, run the inside in the sandbox, and return what came back; the stage is removed after."""
    stage = Path(tempfile.mkdtemp(prefix="localcrew-sandbox-"))
    cgroup: Path | None = None
    try:
        # work/ is all the tests may write (code, home, tmp); out/ is ours: the inside and the config;
        # root/ is where the supervisor builds the new root (a tmpfs, in its own mount namespace).
        work, out = stage / "work", stage / "out"
        code = work / STAGE_NAME
        refused = stage_copy(workspace.resolve(), code)
        for sub in (work / "home", work / "tmp", out, stage / "root"):
            sub.mkdir(parents=True, exist_ok=True)
        copy_inside(out)
        (out / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # used where there is no new root
        cgroup, cgroup_note = make_cgroup(limits)
        extra_nproc = 0 if mode.fresh_userns else processes_of(
            mode.drop_uid if mode.drop_uid is not None else os.getuid())
        read_end, write_end = os.pipe()
        config = {
            "task": task, "stage": str(stage), "code": str(code), "mount": mode.mount,
            "drop_uid": mode.drop_uid, "channel_fd": write_end, "cgroup": str(cgroup) if cgroup else None,
            "ini": str(out / "pytest.ini"), "tmpfs_bytes": limits.tmpfs_bytes, "cpu_s": limits.cpu_time_s,
            "as_bytes": limits.address_space_bytes, "fsize_bytes": limits.file_size_bytes,
            "nproc": limits.max_processes + extra_nproc, "pytest_args": args,
        }
        (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
        if mode.drop_uid is not None:
            os.chmod(stage, 0o755)  # mkdtemp makes it 0700; the dropped uid must reach its own stage
            chown_tree(work, mode.drop_uid)  # out/ stays root's
        started = time.monotonic()
        try:
            rc, timed_out, output, channel = supervise(
                [*mode.prefix, *boot_command(python, out, out / "config.json")],
                stage, limits, read_end, write_end, cgroup)
        finally:
            os.close(read_end)
        wall_s = time.monotonic() - started
        output = output.replace(str(code) + "/", "").replace(str(stage), "<stage>")
        return Launched(mode=mode, rc=rc, timed_out=timed_out, output=output, events=parse_events(channel),
                        refused=refused, cgroup_note=cgroup_note, wall_s=wall_s)
    finally:
        if cgroup is not None:
            remove_cgroup(cgroup)
        remove_tree(stage)
