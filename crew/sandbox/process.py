"""Watching the sandbox from the parent: start the supervisor, capture its output, enforce the wall clock.

The supervisor runs in its own session with a scrubbed environment and one private descriptor, the
*channel*; at the end (or at the wall-clock limit) the parent kills its group, the cgroup and the
namespace's PID 1, and waits until they are gone.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path

from crew.sandbox.cgroup import kill_cgroup
from crew.sandbox.report import SandboxLimits

_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_CHANNEL_CAP_BYTES = 16 * 1024**2


def supervise(argv: list[str], stage: Path, limits: SandboxLimits, read_end: int, write_end: int,
               cgroup: Path | None) -> tuple[int, bool, str, bytes]:
    """Run `argv` until it exits or the wall clock runs out, then make sure nothing of it is left.

    (exit status, timed out, captured output, the channel's bytes); `write_end` is the supervisor's alone.
    """
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
        kill_cgroup(cgroup)
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


def processes_of(uid: int) -> int:
    """Processes this uid runs now (RLIMIT_NPROC counts them too, where no fresh user namespace starts at 0)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # the process may be gone already
                count += entry.stat().st_uid == uid
    return count

