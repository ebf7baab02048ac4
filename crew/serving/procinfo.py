"""Which process is which: identities read from /proc, and who owns a listening socket.

A pid alone names nothing for long: once a server exits, the kernel hands its pid to the next process.
What stays true of one process for its whole life is its start time (field 22 of /proc/<pid>/stat, clock
ticks after boot, with the boot's id) and, for our servers, its command line. We record those when a
server starts and compare them before we ever signal or reuse it.

A port is no better: "something answers on 13800" does not say it is our server. `owns_listener` matches
the inode of the socket listening on host:port (/proc/net/tcp) with the sockets our process (or its
session) holds open (/proc/<pid>/fd).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PROC = Path("/proc")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    start_ticks: int               # /proc/<pid>/stat field 22
    boot_id: str                   # /proc/sys/kernel/random/boot_id: start_ticks count from this boot
    cmdline: tuple[str, ...]
    pgid: int
    session: int


Verdict = Literal["ours", "gone", "other", "unverifiable"]


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    detail: str                    # one line for the user when the verdict is not "ours"


def boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (the command name in parentheses may hold spaces and ')')."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def identity(pid: int) -> ProcessIdentity | None:
    """The process now holding `pid`, or None when there is none (a zombie counts as gone)."""
    if pid <= 0:
        return None
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    cmd = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0"))
    if cmd and cmd[-1] == "":
        cmd = cmd[:-1]
    # fields[0] is field 3 (state): field n is fields[n - 3]
    return ProcessIdentity(pid=pid, start_ticks=int(fields[19]), boot_id=boot_id(), cmdline=cmd,
                           pgid=int(fields[2]), session=int(fields[3]))


def check(pid: int, start_ticks: int | None, boot: str, cmdline: tuple[str, ...]) -> Check:
    """Is `pid` still the process recorded with this start time, boot and command line?"""
    if pid <= 1:
        return Check("unverifiable", f"pid {pid} is not a server localcrew started")
    if start_ticks is None:
        return Check("unverifiable", f"pid {pid} was recorded without its start time (an older localcrew), "
                                     f"so it cannot be told from another process (if it is your server: "
                                     f"`kill {pid}`)")
    now = identity(pid)
    if now is None:
        return Check("gone", f"pid {pid} is not running")
    if now.start_ticks != start_ticks or (boot and now.boot_id and boot != now.boot_id):
        return Check("other", f"pid {pid} is now another process ({_short(now.cmdline)})")
    if cmdline and now.cmdline != cmdline:
        return Check("other", f"pid {pid} runs another command line ({_short(now.cmdline)})")
    if now.pgid != pid:
        # our servers lead their own process group (start_new_session): anything else is not one
        return Check("other", f"pid {pid} does not lead its own process group")
    return Check("ours", "")


def _short(cmd: tuple[str, ...], n: int = 60) -> str:
    text = " ".join(cmd) or "no command line"
    return text if len(text) <= n else text[: n - 1] + "…"


# ------------------------------------------------------------------------------------------ sockets


def _hex_addr(host: str, port: int) -> str:
    return f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"


def listening_inodes(host: str, port: int) -> set[int]:
    """Inodes of the TCP sockets listening on exactly host:port (IPv4; our servers bind 127.0.0.1)."""
    want = _hex_addr(host, port)
    try:
        lines = (PROC / "net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    out = set()
    for line in lines:
        f = line.split()
        if len(f) > 9 and f[1] == want and f[3] == _LISTEN:
            out.add(int(f[9]))
    return out


def socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    fd_dir = PROC / str(pid) / "fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return out
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def session_members(sid: int) -> list[int]:
    """Every process in session `sid` (a server and whatever it spawned)."""
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[3]) == sid:
                members.append(int(entry.name))
    return members


def owns_listener(pid: int, host: str, port: int) -> bool:
    """True when something listens on host:port and every such socket belongs to `pid` or its session.

    This is what tells our server from a neighbour that answers on the same port (another run's server, or
    anything that bound the port first): a request to host:port reaches one of these sockets.
    """
    listening = listening_inodes(host, port)
    if not listening:
        return False
    held = socket_inodes(pid)
    if listening <= held:
        return True
    for member in session_members(pid):
        held |= socket_inodes(member)
    return listening <= held
