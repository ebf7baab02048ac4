"""The parent's side of a sandboxed run: stage a copy, pick a launch mode, start, watch, kill, read back.

Containment, outermost first (the inside is `boot.py`):

- a staging copy of the workspace in a fresh temp folder, without the files no agent may write
  (`crew/tools/names.py`); a test can never alter the workspace itself;
- a cgroup v2 of its own where this machine lets us make one: `memory.max` for everything inside,
  `pids.max`, and `cgroup.kill` at the end;
- util-linux `unshare`: network (only a down loopback), PID, mount and IPC namespaces; the supervisor is
  PID 1, so when it ends everything inside ends, whatever a test did with `setsid` or its death signal;
- a wall-clock limit: the parent kills the supervisor (and waits until it is gone) and the cgroup;
- a scrubbed environment (no API keys or tokens; HOME and TMPDIR inside the stage), stdin = /dev/null,
  captured output capped (head and tail kept).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from crew.tools.names import refusal
from crew.tools.sandbox.report import SandboxLimits

SANDBOX_UID = 65534                                    # nobody
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_BOOT = Path(__file__).with_name("boot.py")
# The staged folder's name: an identifier (a top-level __init__.py makes it a package) that no standard,
# runner or installed module has, and no agent may write (names.py refuses nothing with this prefix, but
# a model has no reason to invent it).
STAGE_NAME = "localcrew_answer"
_SKIP_COPY = frozenset({".sandbox", "__pycache__", ".pytest_cache", ".git"})
_CHANNEL_CAP_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class SandboxMode:
    """One way of launching the child, from most to least contained."""
    prefix: tuple[str, ...]
    mount: bool
    drop_uid: int | None
    fresh_userns: bool
    note: str = ""

    @property
    def network_isolated(self) -> bool:
        return bool(self.prefix)

    def describe(self) -> str:
        parts = ["network, PID, IPC and mount namespaces; a new root with only the stage, the interpreter "
                 "and its packages" if self.mount else "NO network isolation (unshare is not allowed here)"]
        if self.drop_uid is not None:
            parts.append(f"runs as uid {self.drop_uid}")
        elif os.geteuid() == 0 and not self.fresh_userns:
            parts.append("runs as ROOT: the process-count limit is not enforced")
        if self.fresh_userns:
            parts.append("user namespace")
        return "; ".join(parts) + (f" ({self.note})" if self.note else "")


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


def candidate_modes() -> list[SandboxMode]:
    """The launch modes to try, most contained first; `sandbox_mode` keeps the first that works."""
    unshare = shutil.which("unshare")
    ns = ["--mount", "--net", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc"]
    modes = []
    if os.geteuid() == 0:
        if unshare:
            modes.append(SandboxMode((unshare, *ns), mount=True, drop_uid=SANDBOX_UID, fresh_userns=False))
        modes += [SandboxMode((), mount=False, drop_uid=SANDBOX_UID, fresh_userns=False),
                  SandboxMode((), mount=False, drop_uid=None, fresh_userns=False)]
    else:
        if unshare:
            modes.append(SandboxMode((unshare, "--user", "--map-root-user", *ns), mount=True, drop_uid=None,
                                     fresh_userns=True))
        modes.append(SandboxMode((), mount=False, drop_uid=None, fresh_userns=False))
    return modes


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


def stage_copy(workspace: Path, code: Path) -> tuple[str, ...]:
    """Copy the workspace to `code`, leaving out what no agent may write; say what was left out and why."""
    refused: list[str] = []
    for dirpath, dirnames, filenames in os.walk(workspace):
        rel_dir = Path(dirpath).relative_to(workspace)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_COPY and not d.startswith("."))
        (code / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            src, rel = Path(dirpath, name), (rel_dir / name).as_posix()
            why = refusal(rel)
            if why is not None:
                refused.append(f"{rel}: left out of the test run: {why[0]}; fix: {why[1]}")
            elif src.is_symlink():
                target = os.readlink(src)
                resolved = src.resolve()
                if resolved == workspace or workspace in resolved.parents:
                    os.symlink(target, code / rel)
            elif src.is_file():
                shutil.copyfile(src, code / rel)
    return tuple(refused)


def launch(workspace: Path, task: str, args: list[str], limits: SandboxLimits, python: str,
           mode: SandboxMode) -> Launched:
    """Stage, run `boot.py` in the sandbox, and return what came back; the stage is removed after."""
    stage = Path(tempfile.mkdtemp(prefix="localcrew-sandbox-"))
    cgroup: Path | None = None
    try:
        # work/ is all the tests may write (code, home, tmp); out/ is ours: boot.py and the config;
        # root/ is where the supervisor builds the new root (a tmpfs, in its own mount namespace).
        work, out = stage / "work", stage / "out"
        code = work / STAGE_NAME
        refused = stage_copy(workspace.resolve(), code)
        for sub in (work / "home", work / "tmp", out, stage / "root"):
            sub.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_BOOT, out / "boot.py")
        (out / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # used where there is no new root
        cgroup, cgroup_note = _make_cgroup(limits)
        extra_nproc = 0 if mode.fresh_userns else _processes_of(
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
            _chown_tree(work, mode.drop_uid)  # out/ stays root's
        started = time.monotonic()
        try:
            rc, timed_out, output, channel = _supervise(
                [*mode.prefix, python, "-I", "-B", str(out / "boot.py"), str(out / "config.json")],
                stage, limits, read_end, write_end, cgroup)
        finally:
            os.close(read_end)
        wall_s = time.monotonic() - started
        output = output.replace(str(code) + "/", "").replace(str(stage), "<stage>")
        return Launched(mode=mode, rc=rc, timed_out=timed_out, output=output, events=_parse(channel),
                        refused=refused, cgroup_note=cgroup_note, wall_s=wall_s)
    finally:
        if cgroup is not None:
            _remove_cgroup(cgroup)
        _remove_tree(stage)


def _parse(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(event, dict):
            events.append(event)
    return events


def _supervise(argv: list[str], stage: Path, limits: SandboxLimits, read_end: int, write_end: int,
               cgroup: Path | None) -> tuple[int, bool, str, bytes]:
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env.update(HOME=str(stage / "work" / "home"), TMPDIR=str(stage / "work" / "tmp"),
               USER="sandbox", LOGNAME="sandbox",
               PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    try:
        proc = subprocess.Popen(argv, cwd=stage, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(write_end,))
    finally:
        os.close(write_end)  # only the supervisor holds the channel now
    assert proc.stdout is not None
    capture = _Capped(limits.output_cap_bytes)
    channel = bytearray()
    readers = [threading.Thread(target=capture.drain, args=(proc.stdout.fileno(),), daemon=True),
               threading.Thread(target=_drain_into, args=(read_end, channel), daemon=True)]
    for reader in readers:
        reader.start()
    timed_out = not _wait_unreaped(proc, limits.wall_timeout_s)
    init = _namespace_init(proc.pid)
    # The leader is not reaped yet, so its group id cannot have been reused by an unrelated process.
    _kill_group(proc.pid)
    if cgroup is not None:
        _kill_cgroup(cgroup)
    if init is not None:
        _kill_and_wait(init)
    rc = proc.wait()
    for reader in readers:
        reader.join(timeout=2)
    if not readers[0].is_alive():  # else a stray process still holds the pipe (no-namespace fallback only)
        proc.stdout.close()
    text = capture.text()
    if timed_out:
        text += f"\n[localcrew] killed after the {limits.wall_timeout_s:g} s wall-clock limit\n"
    return rc, timed_out, text, bytes(channel)


def _drain_into(fd: int, sink: bytearray) -> None:
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            if len(sink) < _CHANNEL_CAP_BYTES:
                sink += chunk


def _namespace_init(pid: int) -> int | None:
    """A pidfd for the supervisor (unshare's child, PID 1 inside) while it is alive."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
    except OSError:
        return None
    for child in children:
        with contextlib.suppress(OSError):
            return os.pidfd_open(int(child))
    return None


def _kill_and_wait(pidfd: int) -> None:
    """SIGKILL the supervisor and wait until it is gone: by then the kernel has ended its namespace."""
    try:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        select.select([pidfd], [], [], 10)
    finally:
        os.close(pidfd)


class _Capped:
    """Keeps the first and the last half of the cap: pytest's summary is at the end."""

    def __init__(self, cap_bytes: int) -> None:
        self.half = max(1, cap_bytes // 2)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_bytes = 0
        self.dropped = 0

    def drain(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 65536):
                room = self.half - len(self.head)
                self.head += chunk[:room]
                rest = chunk[room:] if room > 0 else chunk
                if rest:
                    self.tail.append(rest)
                    self.tail_bytes += len(rest)
                    while self.tail_bytes - len(self.tail[0]) >= self.half:
                        self.dropped += len(self.tail[0])
                        self.tail_bytes -= len(self.tail.popleft())

    def text(self) -> str:
        tail = b"".join(self.tail)
        if self.tail_bytes > self.half:
            self.dropped += self.tail_bytes - self.half
            tail = tail[-self.half :]
        cut = f"\n… ({self.dropped} bytes of output dropped) …\n".encode() if self.dropped else b""
        return (bytes(self.head) + cut + tail).decode("utf-8", errors="replace")


def _wait_unreaped(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait for the child to exit without reaping it (a pidfd); False on timeout."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # kernels before 5.3
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------ cgroup v2


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


def _make_cgroup(limits: SandboxLimits) -> tuple[Path | None, str]:
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


def _kill_cgroup(path: Path) -> None:
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


def _remove_cgroup(path: Path) -> None:
    _kill_cgroup(path)
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


# ------------------------------------------------------------------------------------------ helpers


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # the process may be gone already
                count += entry.stat().st_uid == uid
    return count


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            with contextlib.suppress(OSError):
                os.lchown(name, uid, uid)


def _remove_tree(root: Path) -> None:
    def make_writable(_func: Any, path: str, _exc: Any) -> None:
        # A test may leave a folder without write permission; as a normal user rmtree needs it back.
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
        except OSError:
            pass

    shutil.rmtree(root, onerror=make_writable)
