"""The sandbox's inside: a supervisor that the tests cannot touch, and the worker that runs pytest.

Run as `python -I -B boot.py config.json` (standard library only: this file is copied into the stage and
needs nothing from the project). Inside the namespaces it is PID 1, the *supervisor*:

1. joins the run's cgroup (when the parent made one) and builds a new root file system holding only the
   staged copy, the interpreter and its installed packages, the system folders read-only, a fresh /proc
   and size-capped tmpfs for /tmp & co (`_build_root`); then `pivot_root`, so nothing else is reachable;
2. forks the *worker* and reads its events from a pipe. The worker drops to uid 65534 (as root), sets
   the rlimits and `no_new_privs`, installs an audit hook, checks syntax and imports of each module, then
   runs pytest with only our reporting plugin (`--noconftest`, our own ini, `--import-mode=importlib`, the
   staged folder *after* site-packages on `sys.path`);
3. forwards each well-formed event to the parent on a descriptor the worker never holds, adds the
   worker's exit status as the kernel reports it, and exits — which, as PID 1, kills everything left in
   the namespace. The parent computes the verdict from that stream (`verdict.py`).

The worker can lie about itself (Python cannot confine Python), but it cannot write to the parent's
channel, change the exit status the kernel reports, or outlive the supervisor; docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import resource
import select
import signal
import sys
from pathlib import Path
from typing import Any

_TRACEBACK_CHARS = 1500
_EVENT_CAP_BYTES = 8 * 1024**2          # what the supervisor forwards at most
_LINE_CAP_BYTES = 64 * 1024             # one event line at most
_EVENT_KINDS = frozenset({"collected", "collect_error", "start", "report", "finish", "syntax",
                          "import_start", "import_done", "probe"})
_SKIP_MODULES = frozenset({"setup.py", "__main__.py"})
# Autoloading every installed pytest plugin costs seconds here (langsmith's imports half of langchain), so
# autoload is off and the plugins that model-written tests plausibly need load when a test mentions them.
_PLUGINS_ON_DEMAND = {"hypothesis": "_hypothesis_pytestplugin", "anyio": "anyio.pytest_plugin"}
_THROWAWAY_DIRS = ("/var/tmp", "/dev/shm", "/run/lock")  # besides /tmp, sharing its tmpfs
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_INI = "/run/localcrew/pytest.ini"

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 1, 2, 4, 8, 32
_MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC, _MS_PRIVATE, _MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_CAPBSET_DROP, _PR_SET_SECUREBITS, _PR_SET_NO_NEW_PRIVS = 1, 4, 24, 28, 38
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS, SECBIT_NO_CAP_AMBIENT_RAISE, each with its lock
_SECURE_NOROOT_ALL = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


# ------------------------------------------------------------------------------------------ supervisor


def main(config_path: str) -> int:  # pragma: no cover - runs in the sandboxed child
    cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
    channel = int(cfg["channel_fd"])
    os.set_inheritable(channel, False)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with unshare, whatever the tests do
    _prctl(_PR_SET_DUMPABLE, 0)                # same-uid processes cannot ptrace it or read its memory
    if cfg.get("cgroup"):
        with open(os.path.join(cfg["cgroup"], "cgroup.procs"), "w", encoding="ascii") as fh:
            fh.write("0")  # this process, and so everything it starts
    if cfg["mount"]:
        _build_root(cfg)
        _cap_sysv_ipc(cfg["tmpfs_bytes"])
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
            status = _worker(cfg, write_end)
        except BaseException as exc:  # noqa: BLE001 - the worker must end with an exit status, always
            sys.stderr.write(f"[localcrew sandbox] worker failed: {type(exc).__name__}: {exc}\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    status = _relay(read_end, wake_r, worker, channel)
    _send(channel, {"e": "worker_exit", "status": status})
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
                sent += _forward(line, channel, sent)
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


def _forward(line: bytes, channel: int, sent: int) -> int:
    if sent >= _EVENT_CAP_BYTES or len(line) > _LINE_CAP_BYTES:
        return 0
    try:
        event = json.loads(line)
    except ValueError:
        return 0
    if not isinstance(event, dict) or event.get("e") not in _EVENT_KINDS:
        return 0
    return _send(channel, event)


def _send(channel: int, event: dict[str, Any]) -> int:
    data = (json.dumps(event) + "\n").encode()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(channel, view):]
        except BrokenPipeError:
            return len(data)
    return len(data)


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, ctypes.c_ulong(value), 0, 0, 0)


# ------------------------------------------------------------------------------------------ file system


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    enc = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    if libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _bind_read_only(source: str, target: str) -> None:
    """Bind `source` at `target`, read-only, keeping the flags a user namespace may not drop."""
    _mount(source, target, None, _MS_BIND | _MS_REC)
    st = os.statvfs(source)
    kept = sum(ms for st_flag, ms in ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV),
                                      (os.ST_NOEXEC, _MS_NOEXEC), (os.ST_NOATIME, _MS_NOATIME),
                                      (os.ST_NODIRATIME, _MS_NODIRATIME), (os.ST_RELATIME, _MS_RELATIME))
               if st.f_flag & st_flag)
    # Where this is refused, still only as writable as the uid allows (the uid drop covers the root case).
    with contextlib.suppress(OSError):
        _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | kept)


def _build_root(cfg: dict[str, Any]) -> None:
    """A new root holding only what the tests need; `pivot_root` into it, the old one detached.

    Visible afterwards: the system folders (read-only), the interpreter's own folders and site-packages
    (read-only, at their own paths — not the project the interpreter was installed from), a few /dev
    nodes, a fresh /proc, /tmp & co (one size-capped tmpfs) and the stage's work/ folder (a second one).
    """
    stage, tmpfs_bytes, uid = cfg["stage"], cfg["tmpfs_bytes"], cfg["drop_uid"]
    os.umask(0o022)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing we mount may propagate to the host
    root = os.path.join(stage, "root")
    flags = _MS_NOSUID | _MS_NODEV
    _mount("tmpfs", root, "tmpfs", flags, f"size={tmpfs_bytes},mode=0755")
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            os.symlink(os.readlink(d), root + d)
        elif os.path.isdir(d):
            os.makedirs(root + d)
            _bind_read_only(d, root + d)
    # /tmp & co before the interpreter: an interpreter that lives under /tmp (a CI clone's .venv) is bound
    # on top of this tmpfs, not hidden by it (and its mount points here are root's, in a sticky folder).
    os.makedirs(root + "/tmp")
    _mount("tmpfs", root + "/tmp", "tmpfs", flags, f"size={tmpfs_bytes},mode=1777")
    for d in _THROWAWAY_DIRS:
        shared = f"{root}/tmp/.localcrew{d.replace('/', '-')}"
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        os.makedirs(root + d, exist_ok=True)
        _mount(shared, root + d, None, _MS_BIND)
    for p in _interpreter_paths():
        if not any(p == d or p.startswith(d + "/") for d in _SYSTEM_DIRS) and not os.path.ismount(root + p):
            os.makedirs(root + p, exist_ok=True)
            _bind_read_only(p, root + p)
    os.makedirs(root + "/dev", exist_ok=True)  # /dev/shm may be there already
    for name in _DEVICES:
        if os.path.exists("/dev/" + name):
            open(f"{root}/dev/{name}", "w").close()
            _mount("/dev/" + name, f"{root}/dev/{name}", None, _MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    work = os.path.join(stage, "work")
    files = _snapshot(work)
    os.makedirs(root + work)
    _mount("tmpfs", root + work, "tmpfs", flags, f"size={tmpfs_bytes},mode=0755")
    _restore(root + work, files, uid)
    os.makedirs(root + os.path.dirname(_INI), exist_ok=True)
    with open(root + _INI, "w", encoding="utf-8") as fh:
        fh.write("[pytest]\n")
    os.makedirs(root + "/proc")
    # unshare's --mount-proc made /proc this PID namespace's own; bound, not mounted anew: a user namespace
    # may mount proc only while another full proc mount is visible, and after pivot_root none is.
    _mount("/proc", root + "/proc", None, _MS_BIND | _MS_REC)
    _pivot_root(root)
    with contextlib.suppress(OSError):
        _mount(None, "/", None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | flags)


def _pivot_root(root: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    os.chdir(root)
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is not None and libc.syscall(number, b".", b".") == 0:
        libc.umount2(b".", _MNT_DETACH)  # the old root, stacked under the new one: gone
    else:  # an architecture we do not know the number for: chroot (the worker holds no capability)
        os.chroot(".")
    os.chdir("/")


def _cap_sysv_ipc(limit_bytes: int) -> None:
    """SysV shared memory lives in our IPC namespace (gone with it); cap its size there too."""
    for name, value in (("shmmax", limit_bytes), ("shmall", max(1, limit_bytes // 4096))):
        with contextlib.suppress(OSError):
            Path("/proc/sys/kernel", name).write_text(str(value), encoding="ascii")


def _snapshot(root: str) -> list[tuple[str, str, bytes]]:
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


def _restore(root: str, entries: list[tuple[str, str, bytes]], uid: int | None) -> None:
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


def _interpreter_paths() -> list[str]:
    """The interpreter's own folders: its prefixes, the standard library and site-packages, outermost only.

    Not every `sys.path` entry: an editable install puts the project's own folder there.
    """
    import site
    import sysconfig

    wanted = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages(),
              *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib"))]
    paths = {os.path.realpath(p) for p in wanted if p and os.path.isdir(p)}
    return sorted(p for p in paths if not any(p.startswith(q + "/") for q in paths))


# ------------------------------------------------------------------------------------------ worker


def _worker(cfg: dict[str, Any], events_fd: int) -> int:  # pragma: no cover - runs in the sandboxed child
    for which, value in ((resource.RLIMIT_CPU, cfg["cpu_s"]), (resource.RLIMIT_AS, cfg["as_bytes"]),
                         (resource.RLIMIT_FSIZE, cfg["fsize_bytes"]), (resource.RLIMIT_NPROC, cfg["nproc"]),
                         (resource.RLIMIT_CORE, 0)):
        # The hard CPU limit one second later: SIGXCPU can be ignored, SIGKILL cannot.
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))
    if cfg["drop_uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["drop_uid"])
        os.setuid(cfg["drop_uid"])  # from root to non-root: all capabilities go too
    elif cfg["mount"]:
        _drop_capabilities()  # root of a user namespace: keep the uid, lose what root may do
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the uid change cleared it
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)             # no setuid binary gives anything back
    code = cfg["code"]
    os.chdir(code)
    events = _Events(events_fd)
    if cfg["task"] == "probe":
        import pytest  # noqa: F401 - the probe proves pytest imports under this mode

        events.emit(e="probe")
        return 0
    import pytest

    sys.modules["__main__"] = type(sys)("__main__")  # this file is not reachable by name from the tests
    # After the standard library and site-packages, so nothing there can be hidden: the staged folder, and
    # (what pytest's default import mode would prepend) each folder of tests that is not a package.
    sys.path += [code, *sorted({str(p.parent) for p in Path(code).rglob("test_*.py")
                                if p.parent != Path(code) and not (p.parent / "__init__.py").exists()})]
    sys.addaudithook(_audit)
    good = _check_syntax(code, events)
    _check_imports(code, good, events)
    if cfg["task"] == "imports":
        return 0
    ini = _INI if os.path.exists(_INI) else cfg["ini"]
    args = [*_plugins_wanted(Path(code)), "-c", ini, "--rootdir", code, "--noconftest", "-p", "no:cacheprovider",
            "--import-mode=importlib", *cfg["pytest_args"], code]
    return int(pytest.main(args, plugins=[_Recorder(events)]))


_PRIVATE_PROC = re.compile(r"^/(proc/[^/]+|dev)/(mem|fd|fdinfo)(/.*)?$|^/proc/[^/]+/task/[^/]+/(mem|fd)(/.*)?$")
def _drop_capabilities() -> None:
    """No capability now or after any exec: so no ptrace of the supervisor, no mount, no chroot."""
    libc = ctypes.CDLL(None, use_errno=True)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text(encoding="ascii"))
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)
    libc.prctl(_PR_SET_SECUREBITS, ctypes.c_ulong(_SECURE_NOROOT_ALL), 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)      # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                      # effective, permitted, inheritable: all empty
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset: cannot drop the capabilities")


_BLOCKED_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse the usual ways from the code under test to the reporting plugin and its descriptor."""
    if event in _BLOCKED_EVENTS:
        raise RuntimeError(f"{event} is disabled in the test sandbox (it could reach the test reporter)")
    if event in ("open", "os.listdir") and args and isinstance(args[0], str | bytes) \
            and _PRIVATE_PROC.match(os.fsdecode(args[0])):
        raise PermissionError(errno.EACCES, "process memory and descriptors are off limits here",
                                  os.fsdecode(args[0]))


class _Events:
    """JSON lines to the supervisor as they happen, so a run killed half-way still has its first results."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()

    def emit(self, **event: Any) -> None:
        if os.getpid() != self.pid:
            return  # a forked copy of pytest (a test that forked and did not exit) must not report twice
        data = (json.dumps(event) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data):]


def _produced_modules(code: Path) -> list[Path]:
    """Non-test .py files the developer produced (tests and setup.py are not imported alone)."""
    found = []
    for path in sorted(code.rglob("*.py")):
        rel = path.relative_to(code)
        name = rel.name
        if name.startswith("test_") or name.endswith("_test.py") or name in _SKIP_MODULES:
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        found.append(rel)
    return found


def _check_syntax(code: str, events: _Events) -> list[Path]:
    """Precise syntax errors, parsed here (never in the parent) and never executed; the modules that parse."""
    import ast

    good = []
    for rel in _produced_modules(Path(code)):
        text = (Path(code) / rel).read_text(encoding="utf-8", errors="replace")
        error = None
        try:
            ast.parse(text, filename=str(rel))
        except SyntaxError as exc:
            line = (exc.text or "").strip()
            shown = f" — `{line[:120]}`" if line else ""
            error = f"{rel}:{exc.lineno}: SyntaxError: {exc.msg}{shown}"
        except (MemoryError, RecursionError, ValueError) as exc:
            error = (f"{rel}: SyntaxError: the parser gave up on this file ({type(exc).__name__}): "
                     "split deeply nested or very long expressions")
        if error:
            events.emit(e="syntax", module=str(rel), error=error)
        else:
            good.append(rel)
    return good


def _location(exc: BaseException, code: str) -> str:
    """"calc.py:12" for the deepest traceback frame inside the produced code."""
    import traceback

    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(code + "/"):
            where = f"{frame.filename[len(code) + 1 :]}:{frame.lineno}"
    return where


def _check_imports(code: str, modules: list[Path], events: _Events) -> None:
    import importlib

    argv, sys.argv = sys.argv, ["module"]  # a module parsing argv at import must not see our config path
    for rel in modules:
        dotted = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        if not all(part.isidentifier() for part in dotted.split(".")):
            continue
        events.emit(e="import_start", module=str(rel))
        error = None
        try:
            importlib.import_module(dotted)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt at import are errors too
            where = _location(exc, code) or str(rel)
            error = f"{where}: {type(exc).__name__}: {str(exc)[:300]}"
        events.emit(e="import_done", module=str(rel), error=error)
    sys.argv = argv


class _Recorder:
    """A pytest plugin: the results straight from pytest's hooks, one event per line."""

    def __init__(self, events: _Events) -> None:
        self.events = events

    def pytest_configure(self, config: Any) -> None:
        # `pytest_plugins = [...]` in a test module would import and register agent-written hooks.
        import pytest

        def refuse(module: Any) -> None:
            if getattr(module, "pytest_plugins", None):
                raise pytest.Collector.CollectError(
                    "`pytest_plugins` in a test file is refused in the sandbox (it would load hooks "
                    "that change how tests are reported): import helpers as plain modules instead")

        config.pluginmanager.consider_module = refuse

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.events.emit(e="collect_error", nodeid=report.nodeid or "(collection)", **_failure(report))

    def pytest_collection_finish(self, session: Any) -> None:
        self.events.emit(e="collected", n=len(session.items), ids=[item.nodeid for item in session.items])

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.events.emit(e="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        event: dict[str, Any] = {"e": "report", "nodeid": report.nodeid, "when": report.when,
                                 "outcome": report.outcome}
        if report.failed:
            event.update(_failure(report))
        self.events.emit(**event)

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        self.events.emit(e="finish", status=int(exitstatus))


def _failure(report: Any) -> dict[str, str]:
    """The one-line crash message and the trimmed traceback of a failed pytest report."""
    text = str(report.longreprtext)
    crash = getattr(report.longrepr, "reprcrash", None)
    message = str(getattr(crash, "message", None) or "")
    if not message:  # collection errors carry a plain-text repr: take its last "E   …" line
        lines = [ln for ln in text.splitlines() if ln.strip()]
        e_lines = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
        message = e_lines[-1] if e_lines else lines[-1] if lines else ""
    tail = text if len(text) <= _TRACEBACK_CHARS else "…\n" + text[-_TRACEBACK_CHARS:]
    return {"message": message[:500], "longrepr": tail}


def _plugins_wanted(code: Path) -> list[str]:
    import importlib.util

    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in code.rglob("*.py"))
    return [arg for word, plugin in _PLUGINS_ON_DEMAND.items()
            if word in text and importlib.util.find_spec(plugin.split(".")[0]) is not None
            for arg in ("-p", plugin)]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1]))
