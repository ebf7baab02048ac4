"""Run pytest on model-written code, contained. The verdict comes from pytest's own hooks, never a model.

Threat model: code from a confused model (endless loops, fork or memory bombs, huge writes, stray deletes,
network calls), not a determined attacker; for hostile code use a VM. Containment, outermost first:

- a staging copy of the workspace in a fresh temp folder (a test can never alter the workspace itself);
- a wall-clock timeout that kills the whole process tree: the PID namespace's init when we have one (that
  takes everything inside, even processes that called setsid), else the process group;
- namespaces via util-linux `unshare`: network (only a down loopback: every connection fails at once),
  PID, and mount. With the mount namespace everything writable is a size-capped tmpfs (/tmp & co, and the
  stage's own work/ folder), and private folders are hidden (see `_confine_filesystem`);
- as real root: after the mounts the child drops to uid/gid 65534 (`nobody`), so files outside are
  read-only to it and RLIMIT_NPROC is enforced (the kernel never enforces it for root); as a normal user:
  a user namespace, whose process count starts at zero, so RLIMIT_NPROC counts only the sandbox;
- rlimits: CPU time, address space, file size, process count, no core files;
- a scrubbed environment (no API keys or tokens; HOME and TMPDIR inside the stage), stdin = /dev/null,
  and captured output capped (head and tail kept).

Which of these this machine allows is probed once per interpreter and named in `TestReport.isolation`;
where unshare is refused the tests still run, `network_isolated` is False and the report says so.

This file is also the child: it copies itself into the stage and runs as `python -I boot.py config.json`,
so the part that runs inside the sandbox needs nothing but the standard library.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SANDBOX_UID = 65534                                    # nobody
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_THROWAWAY_DIRS = ("/var/tmp", "/dev/shm", "/run/lock")  # besides /tmp, sharing its tmpfs
_SKIP_MODULES = frozenset({"conftest.py", "setup.py", "__main__.py"})
_TRACEBACK_CHARS = 1500
# Autoloading every installed pytest plugin costs seconds here (langsmith's imports half of langchain), so
# autoload is off and the plugins that model-written tests plausibly need load when a test mentions them.
_PLUGINS_ON_DEMAND = {"hypothesis": "_hypothesis_pytestplugin", "anyio": "anyio.pytest_plugin"}


@dataclass(frozen=True)
class SandboxLimits:
    wall_timeout_s: float = 60.0
    cpu_time_s: int = 60
    address_space_bytes: int = 2 * 1024**3
    file_size_bytes: int = 64 * 1024**2
    # Counted per user. As root the child becomes `nobody` (root is exempt from the limit), and as a normal
    # user it runs in a fresh user namespace whose count starts at zero; only in the no-namespace fallback
    # is the user's (or nobody's) current process count added, so a busy desktop session can still fork.
    max_processes: int = 256
    output_cap_bytes: int = 64_000
    tmpfs_bytes: int = 64 * 1024**2   # cap of each of the two writable tmpfs (/tmp & co, the stage); RAM


@dataclass(frozen=True)
class TestFailure:
    __test__ = False  # not a pytest test class, despite the name
    name: str
    message: str
    traceback: str


@dataclass(frozen=True)
class TestReport:
    __test__ = False
    collected: int
    passed: int
    failed: int
    errors: int
    skipped: int
    failures: tuple[TestFailure, ...]
    timed_out: bool
    exit_code: int
    output: str
    duration_s: float
    network_isolated: bool
    import_errors: tuple[str, ...]
    isolation: str = ""                                # what containment this run had, in words
    running_at_kill: str = ""                          # the test running when the run was killed or died

    @property
    def ok(self) -> bool:
        # exit_code too: a pytest killed half-way (CPU limit, os._exit) has counted no failure yet.
        return (self.exit_code == 0 and self.collected > 0 and self.failed == 0 and self.errors == 0
                and not self.timed_out and not self.import_errors)

    @property
    def died(self) -> bool:
        """pytest did not finish on its own: killed by a limit or a signal, or a test called os._exit()."""
        return not self.timed_out and not 0 <= self.exit_code <= 5

    def summary(self) -> str:
        """One line, e.g. "3 passed, 1 failed in 0.41 s"."""
        parts = [f"{n} {word}" for n, word in ((self.passed, "passed"), (self.failed, "failed"),
                                               (self.errors, "errors"), (self.skipped, "skipped")) if n]
        counts = ", ".join(parts) or "no tests ran"
        where = f" while running {self.running_at_kill}" if self.running_at_kill else ""
        if self.timed_out:
            return f"killed at the {self.duration_s:.0f} s time limit{where} ({counts} before that)"
        if self.died:
            return f"pytest died{where} ({counts} before that)"
        if self.import_errors:
            counts += f", {len(self.import_errors)} import errors"
        return f"{counts} in {self.duration_s:.2f} s"

    def feedback(self, limit: int = 3000) -> str:
        """What the developer sees in a fix round: verdict, import errors, then each failure, trimmed."""
        out = [f"pytest: {self.summary()}"]
        out += [f"import error: {e}" for e in self.import_errors]
        if self.timed_out:
            out.append("The run was killed at the time limit: look for an endless loop, a sleep or a wait.")
        elif self.died:
            out.append(f"pytest itself died (exit {self.exit_code}): a test may have hit a limit "
                       "(CPU time, memory, processes) or called os._exit().")
        shown = self.failures[:5]
        budget = max(300, (limit - 600) // max(1, len(shown)))
        for f in shown:
            out.append(f"FAILED {f.name}: {f.message[:300]}\n{_tail(f.traceback, budget)}")
        if len(self.failures) > len(shown):
            out.append(f"… and {len(self.failures) - len(shown)} more failures")
        if self.collected == 0 and not self.failures and not self.import_errors:
            out.append(_tail(self.output, 1200))
        return _head_tail("\n".join(out), limit)


def _tail(text: str, limit: int) -> str:
    """The end of a traceback is where the error is."""
    return text if len(text) <= limit else "…\n" + text[-limit:]


def _head_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit // 2] + "\n… (trimmed) …\n" + text[-limit // 2 :]


# ------------------------------------------------------------------------------------------ modules


def _produced_modules(code: Path) -> list[Path]:
    """Non-test .py files the developer produced (tests, conftest and setup.py are not imported alone)."""
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


def _syntax_errors(code: Path) -> tuple[list[str], list[Path]]:
    """Precise syntax errors (parsed here, never executed) and the modules that parse."""
    errors, good = [], []
    for rel in _produced_modules(code):
        try:
            ast.parse((code / rel).read_text(encoding="utf-8", errors="replace"), filename=str(rel))
        except SyntaxError as exc:
            line = (exc.text or "").strip()
            shown = f" — `{line[:120]}`" if line else ""
            errors.append(f"{rel}:{exc.lineno}: SyntaxError: {exc.msg}{shown}")
        else:
            good.append(rel)
    return errors, good


def check_modules(workspace: Path, python: str = sys.executable, *,
                  limits: SandboxLimits = SandboxLimits(wall_timeout_s=20)) -> tuple[str, ...]:
    """Syntax and import errors of each produced non-test module, as "file:line: Error: message".

    Importing runs the model's code, so the import check runs in the sandbox (run_pytest does the same
    check in its own child before the tests start; call this only when you want the check without tests).
    """
    syntax, good = _syntax_errors(workspace.resolve())
    if not good:
        return tuple(syntax)
    run = _launch(workspace.resolve(), "imports", [], limits, python, sandbox_mode(python))
    return tuple(syntax) + run.import_errors


# ------------------------------------------------------------------------------------------ running


def run_pytest(workspace: Path, *, limits: SandboxLimits = SandboxLimits(), python: str = sys.executable,
               mode: SandboxMode | None = None) -> TestReport:
    """Stage the workspace, check that its modules parse and import, and run pytest there, contained.

    `mode` defaults to the most contained one this machine allows (`sandbox_mode`); tests pass others.
    """
    started = time.monotonic()
    syntax, _ = _syntax_errors(workspace.resolve())
    args = ["-q", "-p", "no:cacheprovider", "--tb=short", "-o", "console_output_style=classic"]
    run = _launch(workspace.resolve(), "pytest", args, limits, python, mode or sandbox_mode(python))
    counts = _count(run.events)
    return TestReport(
        collected=counts["collected"], passed=counts["passed"], failed=counts["failed"],
        errors=counts["errors"], skipped=counts["skipped"], failures=_failures(run.events),
        timed_out=run.timed_out, exit_code=run.exit_code, output=run.output,
        duration_s=time.monotonic() - started,
        network_isolated=run.mode.network_isolated, import_errors=tuple(syntax) + run.import_errors,
        isolation=run.mode.describe(), running_at_kill=run.running)


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
        parts = ["network, PID and mount namespaces" if self.mount else
                 "NO network isolation (unshare is not allowed here)"]
        if self.drop_uid is not None:
            parts.append(f"runs as uid {self.drop_uid}")
        elif os.geteuid() == 0 and not self.fresh_userns:
            parts.append("runs as ROOT: the process-count limit is not enforced")
        if self.fresh_userns:
            parts.append("user namespace")
        return "; ".join(parts) + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class _Run:
    mode: SandboxMode
    exit_code: int
    timed_out: bool
    output: str
    events: list[dict[str, Any]]
    import_errors: tuple[str, ...]
    running: str


def candidate_modes() -> list[SandboxMode]:
    """The launch modes to try, most contained first; `sandbox_mode` keeps the first that works."""
    unshare = shutil.which("unshare")
    ns = ["--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
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
                run = _launch(Path(tmp) / "ws", "probe", [], SandboxLimits(wall_timeout_s=30), python, mode)
            except OSError as exc:
                failures.append(f"{' '.join(mode.prefix[:1]) or 'plain'}: {exc}")
                continue
        if run.exit_code == 0 and not run.timed_out:
            if failures:
                return SandboxMode(mode.prefix, mode.mount, mode.drop_uid, mode.fresh_userns,
                                   note="better modes failed: " + "; ".join(failures)[:300])
            return mode
        last_line = run.output.strip().splitlines()[-1][:150] if run.output.strip() else ""
        failures.append(last_line or f"exit {run.exit_code}")
    from crew.errors import WorkflowError  # here, not at the top: the child copy of this file is stdlib-only

    raise WorkflowError("the test sandbox cannot start python in any mode", where=python,
                        fix="check that this interpreter runs and has pytest: " + "; ".join(failures)[:400])


def _launch(workspace: Path, task: str, args: list[str], limits: SandboxLimits, python: str,
            mode: SandboxMode) -> _Run:
    stage = Path(tempfile.mkdtemp(prefix="localcrew-sandbox-"))
    try:
        # work/ is all the tests may write (code, home, tmp); out/ is ours: boot.py, config, the events.
        work, out = stage / "work", stage / "out"
        code = work / "code"
        shutil.copytree(workspace, code, symlinks=True,
                        ignore=shutil.ignore_patterns(".sandbox", "__pycache__", ".pytest_cache", ".git"))
        for sub in (work / "home", work / "tmp", out):
            sub.mkdir()
        shutil.copyfile(__file__, out / "boot.py")
        # An empty config of ours: a pytest.ini or pyproject.toml the model wrote cannot change how we run.
        (out / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        extra_nproc = 0 if mode.fresh_userns else _processes_of(
            mode.drop_uid if mode.drop_uid is not None else os.getuid())
        config = {
            "task": task, "stage": str(stage), "mount": mode.mount, "drop_uid": mode.drop_uid,
            "hide": [] if os.geteuid() == 0 else [str(Path.home())],
            "tmpfs_bytes": limits.tmpfs_bytes, "cpu_s": limits.cpu_time_s,
            "as_bytes": limits.address_space_bytes,
            "fsize_bytes": limits.file_size_bytes, "nproc": limits.max_processes + extra_nproc,
            "pytest_args": [*args, "-c", str(out / "pytest.ini"), "--rootdir", str(code), str(code)],
        }
        (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
        if mode.drop_uid is not None:
            os.chmod(stage, 0o755)  # mkdtemp makes it 0700; the dropped uid must reach its own stage
            _chown_tree(work, mode.drop_uid)  # out/ stays root's: the verdict is not the tests' to edit
        rc, timed_out, output = _supervise([*mode.prefix, python, "-I", "-B", str(out / "boot.py"),
                                            str(out / "config.json")], stage, limits)
        events = _read_events(out / "events.jsonl")
        output = output.replace(str(code) + "/", "").replace(str(stage), "<stage>")
        # The child reports pytest's own exit code; without that event it died. (unshare 2.38 turns a
        # child's death by signal into exit 1, so its status alone would look like "tests failed".)
        finished = [int(e["code"]) for e in events if e.get("e") == "exit"]
        exit_code = finished[-1] if finished else (rc if rc < 0 else -1)
        return _Run(mode=mode, exit_code=rc if task == "probe" else exit_code, timed_out=timed_out,
                    output=output, events=events, import_errors=_import_errors(events, timed_out),
                    running=_running(events) if timed_out or not finished else "")
    finally:
        _remove_tree(stage)


def _supervise(argv: list[str], stage: Path, limits: SandboxLimits) -> tuple[int, bool, str]:
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env.update(HOME=str(stage / "work" / "home"), TMPDIR=str(stage / "work" / "tmp"),
               USER="sandbox", LOGNAME="sandbox",
               PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.Popen(argv, cwd=stage, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    capture = _Capped(limits.output_cap_bytes)
    reader = threading.Thread(target=capture.drain, args=(proc.stdout.fileno(),), daemon=True)
    reader.start()
    timed_out = not _wait_unreaped(proc, limits.wall_timeout_s)
    # Also after a normal exit: without a PID namespace, background children would outlive the run. The
    # leader is not reaped yet, so its group id cannot have been reused by an unrelated process.
    _kill_group(proc.pid)
    rc = proc.wait()
    reader.join(timeout=5)
    if not reader.is_alive():  # else a stray process still holds the pipe (no-namespace fallback only)
        proc.stdout.close()
    text = capture.text()
    if timed_out:
        text += f"\n[localcrew] killed after the {limits.wall_timeout_s:g} s wall-clock limit\n"
    return rc, timed_out, text


class _Capped:
    """Keeps the first and the last half of the cap: pytest's summary is at the end."""

    def __init__(self, cap_bytes: int) -> None:
        self.half = max(1, cap_bytes // 2)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_bytes = 0
        self.dropped = 0

    def drain(self, fd: int) -> None:
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
    # With a PID namespace, killing `unshare` makes it kill its child, the namespace's init, and the kernel
    # then kills everything inside; the group kill is what covers the no-namespace fallback.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


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


# ------------------------------------------------------------------------------------------ results


def _read_events(path: Path, cap_bytes: int = 8 * 1024**2) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open("rb") as fh:
        raw = fh.read(cap_bytes)
    events = []
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(event, dict):
            events.append(event)
    return events


def _count(events: list[dict[str, Any]]) -> dict[str, int]:
    """The same bookkeeping as pytest's terminal summary: setup/teardown failures are errors."""
    counts = {"collected": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for e in events:
        kind = e.get("e")
        if kind == "collected":
            counts["collected"] = int(e.get("n", 0))
        elif kind == "collect_error":
            counts["errors"] += 1
        elif kind == "report":
            when, outcome = e.get("when"), e.get("outcome")
            if outcome == "skipped":
                counts["skipped"] += 1
            elif when == "call":
                counts["passed" if outcome == "passed" else "failed"] += 1
            elif outcome == "failed":
                counts["errors"] += 1
    return counts


def _failures(events: list[dict[str, Any]]) -> tuple[TestFailure, ...]:
    out = []
    for e in events:
        if e.get("e") == "collect_error" or (e.get("e") == "report" and e.get("outcome") == "failed"):
            when = e.get("when", "collect")
            name = str(e.get("nodeid", "")) + ("" if when == "call" else f" [{when}]")
            out.append(TestFailure(name=name, message=str(e.get("message", "")),
                                   traceback=str(e.get("longrepr", ""))))
    return tuple(out)


def _import_errors(events: list[dict[str, Any]], timed_out: bool) -> tuple[str, ...]:
    errors, started, finished = [], [], set()
    for e in events:
        if e.get("e") == "import_start":
            started.append(e["module"])
        elif e.get("e") == "import_done":
            finished.add(e["module"])
            if e.get("error"):
                errors.append(str(e["error"]))
    unfinished = [m for m in started if m not in finished]
    if unfinished:
        why = "killed at the time limit" if timed_out else "the process died"
        errors.append(f"{unfinished[0]}: importing it never finished ({why}): "
                      "code at module level loops or waits")
    return tuple(errors)


def _running(events: list[dict[str, Any]]) -> str:
    done = {e.get("nodeid") for e in events if e.get("e") == "report" and e.get("when") == "teardown"}
    started = [e.get("nodeid") for e in events if e.get("e") == "start"]
    return next((str(n) for n in reversed(started) if n not in done), "")


# ------------------------------------------------------------------------------------------ child side
# Everything below runs inside the sandbox, in the copy of this file (stdlib only, no package imports).

_MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_PR_SET_PDEATHSIG = 1


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    enc = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    if libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _umount(target: str) -> None:
    ctypes.CDLL(None, use_errno=True).umount2(target.encode(), _MNT_DETACH)


def _confine_filesystem(stage: str, hide: list[str], tmpfs_bytes: int, drop_uid: int | None) -> None:
    """Size-capped tmpfs for everything writable, the stage bound back, private folders hidden.

    Writable afterwards: /tmp and the other world-writable folders (one tmpfs) and the stage's work/ (a
    second one, holding a copy of code/, home/ and tmp/); each is capped at `tmpfs_bytes`, so no number
    of files can fill the disk. Everything else is only as writable as the uid allows.
    """
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing we mount may propagate to the host
    os.chdir(stage)  # keeps a handle on the stage while /tmp is covered
    # The interpreter itself may live under /tmp (a checkout or CI clone there, its .venv inside): hold each
    # such folder by an O_PATH descriptor and bind it back through /proc/self/fd once /tmp is covered.
    throwaway = ("/tmp", *_THROWAWAY_DIRS)
    held = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in _interpreter_paths()
            if any(p == d or p.startswith(d + "/") for d in throwaway)]
    flags = _MS_NOSUID | _MS_NODEV
    _mount("tmpfs", "/tmp", "tmpfs", flags, f"size={tmpfs_bytes},mode=1777")
    for d in _THROWAWAY_DIRS:
        if os.path.isdir(d) and not os.path.islink(d):
            shared = "/tmp/.localcrew" + d.replace("/", "-")
            os.mkdir(shared)
            os.chmod(shared, 0o1777)
            _mount(shared, d, None, _MS_BIND)
    for path, fd in held:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)
    os.makedirs(stage, exist_ok=True)
    _mount(".", stage, None, _MS_BIND | _MS_REC)  # "." is still the real stage: bind it back, same path
    os.chdir(stage)
    work = os.path.join(stage, "work")
    files = _snapshot(work)
    _mount("tmpfs", work, "tmpfs", flags, f"size={tmpfs_bytes},mode=0755")
    _restore(work, files, drop_uid)
    needed = _interpreter_paths()
    blocked = {d for d in map(_first_blocking_dir, needed) if d is not None}
    hidden = {os.path.realpath(h) for h in hide if os.path.isdir(h)}
    covers = hidden | (blocked if drop_uid is not None else set())
    keep = [*needed, os.path.realpath(stage)]
    for cover in sorted(covers):
        inside = [p for p in keep if p == cover or p.startswith(cover + "/")]
        _cover_keeping(cover, inside, f"size={tmpfs_bytes}")


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
    """Folders python needs after the uid drop: its prefixes and every sys.path entry, outermost only."""
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                                           os.path.dirname(os.path.realpath(sys.executable)), *sys.path)
             if p and os.path.isdir(p)}
    return sorted(p for p in paths if not any(p.startswith(q + "/") for q in paths))


def _first_blocking_dir(path: str) -> str | None:
    """The outermost folder on the way to `path` that others may not enter (e.g. /root, mode 0700)."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        if not os.stat(d).st_mode & 0o001:
            return d if d != path else None
    return None


def _cover_keeping(cover: str, keep: list[str], tmpfs: str) -> None:
    """Mount an empty tmpfs over `cover` (hiding it) with the `keep` folders inside bound back."""
    holds = []
    for i, path in enumerate(keep):
        hold = f"/tmp/.localcrew-hold-{i}"
        os.makedirs(hold, exist_ok=True)
        _mount(path, hold, None, _MS_BIND | _MS_REC)
        holds.append((hold, path))
    _mount("tmpfs", cover, "tmpfs", _MS_NOSUID | _MS_NODEV, tmpfs + ",mode=0755")
    for hold, path in holds:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(hold, path, None, _MS_BIND | _MS_REC)
        _umount(hold)
        os.rmdir(hold)


def _set_limits(cfg: dict[str, Any]) -> None:
    for which, value in ((resource.RLIMIT_CPU, cfg["cpu_s"]), (resource.RLIMIT_AS, cfg["as_bytes"]),
                         (resource.RLIMIT_FSIZE, cfg["fsize_bytes"]), (resource.RLIMIT_NPROC, cfg["nproc"]),
                         (resource.RLIMIT_CORE, 0)):
        # The hard CPU limit one second later: SIGXCPU is ignored by a namespace's init, SIGKILL is not.
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # from root to non-root: all capabilities go too
    # The uid change cleared unshare's --kill-child death signal; arm it again, so this init (and with it
    # the whole namespace) dies with unshare even if a test moved it out of the killed process group.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Events:
    """JSON lines written as they happen, so a run killed half-way still has its first results."""

    def __init__(self, path: Path) -> None:
        self.fh = path.open("a", encoding="utf-8")
        self.pid = os.getpid()

    def emit(self, **event: Any) -> None:
        if os.getpid() != self.pid:
            return  # a forked copy of pytest (a test that forked and did not exit) must not report twice
        self.fh.write(json.dumps(event) + "\n")
        self.fh.flush()


def _location(exc: BaseException, code: str) -> str:
    """"calc.py:12" for the deepest traceback frame inside the produced code."""
    import traceback

    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(code + "/"):
            where = f"{frame.filename[len(code) + 1 :]}:{frame.lineno}"
    return where


def _check_imports(code: str, events: _Events) -> None:
    import importlib

    argv, sys.argv = sys.argv, ["module"]  # a module parsing argv at import must not see our config path
    for rel in _produced_modules(Path(code)):
        dotted = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        if not all(part.isidentifier() for part in dotted.split(".")):
            continue
        events.emit(e="import_start", module=str(rel))
        error = None
        try:
            importlib.import_module(dotted)
        except SyntaxError:
            pass  # already reported, precisely, by the parent's ast pass
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt at import are errors too
            where = _location(exc, code) or str(rel)
            error = f"{where}: {type(exc).__name__}: {str(exc)[:300]}"
        events.emit(e="import_done", module=str(rel), error=error)
    sys.argv = argv


class _Recorder:
    """A pytest plugin: the verdict straight from pytest's hooks, one event per line."""

    def __init__(self, events: _Events) -> None:
        self.events = events

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.events.emit(e="collect_error", nodeid=report.nodeid or "(collection)", **_failure(report))

    def pytest_collection_finish(self, session: Any) -> None:
        self.events.emit(e="collected", n=len(session.items))

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.events.emit(e="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        event: dict[str, Any] = {"e": "report", "nodeid": report.nodeid, "when": report.when,
                                 "outcome": report.outcome}
        if report.failed:
            event.update(_failure(report))
        self.events.emit(**event)


def _failure(report: Any) -> dict[str, str]:
    """The one-line crash message and the trimmed traceback of a failed pytest report."""
    text = str(report.longreprtext)
    crash = getattr(report.longrepr, "reprcrash", None)
    message = str(getattr(crash, "message", None) or "")
    if not message:  # collection errors carry a plain-text repr: take its last "E   …" line
        lines = [ln for ln in text.splitlines() if ln.strip()]
        e_lines = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
        message = e_lines[-1] if e_lines else lines[-1] if lines else ""
    return {"message": message[:500], "longrepr": _tail(text, _TRACEBACK_CHARS)}


def _child_main(config_path: str) -> int:  # pragma: no cover - runs in the sandboxed child
    cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
    stage = cfg["stage"]
    if cfg["mount"]:
        _confine_filesystem(stage, cfg["hide"], cfg["tmpfs_bytes"], cfg["drop_uid"])
    events = _Events(Path(stage, "out", "events.jsonl"))  # opened before the drop: out/ stays root's
    _set_limits(cfg)
    if cfg["drop_uid"] is not None:
        _drop_privileges(cfg["drop_uid"])
    code = os.path.join(stage, "work", "code")
    os.chdir(code)
    sys.path.insert(0, code)
    if cfg["task"] == "probe":
        import pytest  # noqa: F401 - the probe proves pytest imports under this mode

        return 0
    _check_imports(code, events)
    if cfg["task"] == "imports":
        events.emit(e="exit", code=0)
        return 0
    import pytest

    args = [*_plugins_wanted(Path(code)), *cfg["pytest_args"]]
    status = int(pytest.main(args, plugins=[_Recorder(events)]))
    events.emit(e="exit", code=status)
    return status


def _plugins_wanted(code: Path) -> list[str]:
    import importlib.util

    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in code.rglob("*.py"))
    return [arg for word, plugin in _PLUGINS_ON_DEMAND.items()
            if word in text and importlib.util.find_spec(plugin.split(".")[0]) is not None
            for arg in ("-p", plugin)]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_child_main(sys.argv[1]))
