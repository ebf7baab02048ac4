"""The supervisor: PID 1 of the sandbox, which the tests cannot touch. `main` is the inside's entry point.

Started as `python -I -B -c <bootstrap> OUT CONFIG` (`launch.boot_command`), inside the namespaces it:

1. joins the run's cgroup (when the parent made one) and builds a new root file system holding only the
   staged copy, the interpreter and its installed packages, the system folders read-only, a fresh /proc
   and size-capped tmpfs for /tmp & co (`rootfs.build_root`); then `pivot_root`, so nothing else is
   reachable;
2. forks the *worker* (`worker.py`) and reads its events from a pipe;
3. forwards each well-formed event to the parent on a descriptor the worker never holds, adds the
   worker's exit status as the kernel reports it, and exits — which, as PID 1, kills everything left in
   the namespace. The parent computes the verdict from that stream (`verdict.py`).

The worker can lie about itself (Python cannot confine Python), but it cannot write to the parent's
channel, change the exit status the kernel reports, or outlive the supervisor; docs/sandbox.md.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from pathlib import Path
from typing import Any

from .kernel import PR_SET_DUMPABLE, PR_SET_PDEATHSIG, prctl
from .rootfs import build_root, cap_sysv_ipc
from .worker import worker as run_worker

_EVENT_CAP_BYTES = 8 * 1024**2          # what the supervisor forwards at most
_LINE_CAP_BYTES = 64 * 1024             # one event line at most
EVENT_KINDS = frozenset({"collected", "collect_error", "start", "report", "finish", "syntax",
                         "import_start", "import_done", "probe"})


def main(config_path: str) -> int:  # pragma: no cover - runs in the sandboxed child
    cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
    channel = int(cfg["channel_fd"])
    os.set_inheritable(channel, False)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with unshare, whatever the tests do
    prctl(PR_SET_DUMPABLE, 0)                # same-uid processes cannot ptrace it or read its memory
    if cfg.get("cgroup"):
        with open(os.path.join(cfg["cgroup"], "cgroup.procs"), "w", encoding="ascii") as fh:
            fh.write("0")  # this process, and so everything it starts
    if cfg["mount"]:
        build_root(cfg)
        cap_sysv_ipc(cfg["tmpfs_bytes"])
    read_end, write_end = os.pipe()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    worker = os.fork()
    if worker == 0:
        status = 70
        try:
            signal.set_wakeup_fd(-1)
            for fd in (read_end, channel, wake_r, wake_w):
                os.close(fd)
            status = run_worker(cfg, write_end)
        except BaseException as exc:  # noqa: BLE001 - the worker must end with an exit status, always
            sys.stderr.write(f"[localcrew sandbox] worker failed: {type(exc).__name__}: {exc}\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    status = _relay(read_end, wake_r, worker, channel)
    send(channel, {"e": "worker_exit", "status": status})
    os.close(channel)
    return 0


def _relay(read_end: int, wake_r: int, worker: int, channel: int) -> int:
    """Forward the worker's well-formed events until it exits; reap orphans meanwhile. Its exit status."""
    buf = b""
    sent = 0
    watching = [read_end, wake_r]
    while True:
        ready, _, _ = select.select(watching, [], [])
        if wake_r in ready:
            os.read(wake_r, 512)
        status = _reap(worker)
        if status is not None and read_end in watching:
            os.set_blocking(read_end, False)  # take what the worker wrote, not what orphans write later
        while read_end in watching and (read_end in ready or status is not None):
            try:
                chunk = os.read(read_end, 65536)
            except BlockingIOError:
                break
            if not chunk:
                watching.remove(read_end)
                break
            *lines, buf = (buf + chunk).split(b"\n")
            for line in lines:
                sent += forward(line, channel, sent)
            if len(buf) > _LINE_CAP_BYTES:
                buf = b""
            if status is None:
                break
        if status is not None:
            return status


def _reap(worker: int) -> int | None:
    """Reap every exited child (as PID 1, orphans come to us); the worker's exit code once it is gone."""
    found = None
    while True:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found if found is not None else -1
        if pid == 0:
            return found
        if pid == worker:
            found = os.waitstatus_to_exitcode(raw)


def forward(line: bytes, channel: int, sent: int) -> int:
    """Send one line of the worker's on to the parent if it is a well-formed event; the bytes sent."""
    if sent >= _EVENT_CAP_BYTES or len(line) > _LINE_CAP_BYTES:
        return 0
    try:
        event = json.loads(line)
    except ValueError:
        return 0
    if not isinstance(event, dict) or event.get("e") not in EVENT_KINDS:
        return 0
    return send(channel, event)


def send(channel: int, event: dict[str, Any]) -> int:
    data = (json.dumps(event) + "\n").encode()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(channel, view):]
        except BrokenPipeError:
            return len(data)
    return len(data)
