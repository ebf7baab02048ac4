"""Ports on loopback, leased, not probed (see crew/serving/process.py's docstring for why).

`free_port` takes an exclusive flock on a per-port file in a directory all of this user's localcrew processes
share; the server started on the port inherits the descriptor, so the lease lasts as long as the server.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from crew.errors import ServingError
from crew.units import LOOPBACK


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Servers (uvicorn, ollama) bind with SO_REUSEADDR, so a port in TIME_WAIT is free for them too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def lock_dir() -> Path:
    """Where port leases live: shared by every localcrew process of this user, whatever the project folder."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "localcrew" if base and Path(base).is_dir() else Path(f"/tmp/localcrew-{os.getuid()}")
    path = root / "ports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.lstat(root)
    if st.st_uid != os.getuid() or not os.path.isdir(root) or os.path.islink(root):
        raise ServingError(f"{root} belongs to another user (or is a link): port leases cannot be kept there",
                           where="port leases", fix=f"remove {root}, or set XDG_RUNTIME_DIR to a folder of yours")
    return path


@dataclass
class PortLease:
    """An exclusive flock on host:port's lock file. The server started on the port inherits the fd, so the
    lease lasts as long as the server; `release` drops only this process's hold."""

    host: str
    port: int
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            with _LEASES_LOCK:
                if _LEASES.get((self.host, self.port)) is self:
                    del _LEASES[(self.host, self.port)]


_LEASES: dict[tuple[str, int], PortLease] = {}
_LEASES_LOCK = threading.Lock()


def claim_port(port: int, host: str = LOOPBACK) -> PortLease | None:
    """Lease host:port for a server of this process: None if another localcrew holds it or it is bound."""
    with _LEASES_LOCK:
        held = _LEASES.get((host, port))
        if held is not None and held.fd is not None:  # ours already (handed out, or a restart's)
            return held if port_is_free(port, host) else None
        fd = os.open(lock_dir() / f"{host}-{port}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not port_is_free(port, host):
            os.close(fd)
            return None
        lease = _LEASES[(host, port)] = PortLease(host, port, fd)
        return lease


def free_port(start: int, *, taken: set[int] | None = None, limit: int = 200) -> int:
    """The first loopback port at or above `start` that is bindable and leased to us (skipping ports we
    already handed out). The lease is kept until a server started on the port ends."""
    for port in range(start, min(start + limit, 65535)):
        if (taken is None or port not in taken) and claim_port(port) is not None:
            return port
    raise ServingError(f"no free port in {start}..{start + limit - 1}", where="gpu_layout.yaml: base_port",
                       fix="choose another base_port")


