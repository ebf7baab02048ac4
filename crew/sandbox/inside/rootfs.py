"""The sandbox's new root: only the stage, the interpreter and its packages, the system folders read-only.

Built by the supervisor in its own mount namespace before it forks the worker; `pivot_root` then makes
everything else unreachable (docs/sandbox.md, "What the tests can see").
"""

from __future__ import annotations

import contextlib
import os
import site
import sys
import sysconfig
from pathlib import Path
from typing import Any

from .kernel import (
    MS_BIND,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    mount,
    pivot_root,
)

THROWAWAY_DIRS = ("/var/tmp", "/dev/shm", "/run/lock")  # besides /tmp, sharing its tmpfs
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
INI = "/run/localcrew/pytest.ini"  # our own empty ini, where no agent file can be


def bind_read_only(source: str, target: str) -> None:
    """Bind `source` at `target`, read-only, keeping the flags a user namespace may not drop."""
    mount(source, target, None, MS_BIND | MS_REC)
    st = os.statvfs(source)
    kept = sum(ms for st_flag, ms in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                                      (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                                      (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
               if st.f_flag & st_flag)
    # Where this is refused, still only as writable as the uid allows (the uid drop covers the root case).
    with contextlib.suppress(OSError):
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def build_root(cfg: dict[str, Any]) -> None:
    """A new root holding only what the tests need; `pivot_root` into it, the old one detached.

    Visible afterwards: the system folders (read-only), the interpreter's own folders and site-packages
    (read-only, at their own paths — not the project the interpreter was installed from), a few /dev
    nodes, a fresh /proc, /tmp & co (one size-capped tmpfs) and the stage's work/ folder (a second one).
    """
    stage, tmpfs_bytes, uid = cfg["stage"], cfg["tmpfs_bytes"], cfg["drop_uid"]
    os.umask(0o022)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount may propagate to the host
    root = os.path.join(stage, "root")
    flags = MS_NOSUID | MS_NODEV
    mount("tmpfs", root, "tmpfs", flags, f"size={tmpfs_bytes},mode=0755")
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            os.symlink(os.readlink(d), root + d)
        elif os.path.isdir(d):
            os.makedirs(root + d)
            bind_read_only(d, root + d)
    # /tmp & co before the interpreter: an interpreter that lives under /tmp (a CI clone's .venv) is bound
    # on top of this tmpfs, not hidden by it (and its mount points here are root's, in a sticky folder).
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", flags, f"size={tmpfs_bytes},mode=1777")
    for d in THROWAWAY_DIRS:
        shared = f"{root}/tmp/.localcrew{d.replace('/', '-')}"
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        os.makedirs(root + d, exist_ok=True)
        mount(shared, root + d, None, MS_BIND)
    for p in interpreter_paths():
        if not any(p == d or p.startswith(d + "/") for d in SYSTEM_DIRS) and not os.path.ismount(root + p):
            os.makedirs(root + p, exist_ok=True)
            bind_read_only(p, root + p)
    os.makedirs(root + "/dev", exist_ok=True)  # /dev/shm may be there already
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            open(f"{root}/dev/{name}", "w").close()
            mount("/dev/" + name, f"{root}/dev/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    work = os.path.join(stage, "work")
    files = snapshot(work)
    os.makedirs(root + work)
    mount("tmpfs", root + work, "tmpfs", flags, f"size={tmpfs_bytes},mode=0755")
    restore(root + work, files, uid)
    os.makedirs(root + os.path.dirname(INI), exist_ok=True)
    with open(root + INI, "w", encoding="utf-8") as fh:
        fh.write("[pytest]\n")
    os.makedirs(root + "/proc")
    # unshare's --mount-proc made /proc this PID namespace's own; bound, not mounted anew: a user namespace
    # may mount proc only while another full proc mount is visible, and after pivot_root none is.
    mount("/proc", root + "/proc", None, MS_BIND | MS_REC)
    pivot_root(root)
    with contextlib.suppress(OSError):
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def cap_sysv_ipc(limit_bytes: int) -> None:
    """SysV shared memory lives in our IPC namespace (gone with it); cap its size there too."""
    for name, value in (("shmmax", limit_bytes), ("shmall", max(1, limit_bytes // 4096))):
        with contextlib.suppress(OSError):
            Path("/proc/sys/kernel", name).write_text(str(value), encoding="ascii")


def snapshot(root: str) -> list[tuple[str, str, bytes]]:
    """(kind, relative path, data) for every folder, file and symlink under root, parents first."""
    out: list[tuple[str, str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out.append(("dir", rel, b""))
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                out.append(("link", os.path.join(rel, name), os.readlink(full).encode()))
            elif os.path.isfile(full):
                with open(full, "rb") as fh:
                    out.append(("file", os.path.join(rel, name), fh.read()))
    return out


def restore(root: str, entries: list[tuple[str, str, bytes]], uid: int | None) -> None:
    for kind, rel, data in entries:
        path = os.path.normpath(os.path.join(root, rel))
        if kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif kind == "link":
            os.symlink(data.decode(), path)
        else:
            with open(path, "wb") as fh:
                fh.write(data)
        if uid is not None:
            os.lchown(path, uid, uid)


def interpreter_paths() -> list[str]:
    """The interpreter's own folders: its prefixes, the standard library and site-packages, outermost only.

    Not every `sys.path` entry: an editable install puts the project's own folder there.
    """
    wanted = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages(),
              *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib"))]
    paths = {os.path.realpath(p) for p in wanted if p and os.path.isdir(p)}
    return sorted(p for p in paths if not any(p.startswith(q + "/") for q in paths))
