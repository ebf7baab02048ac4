"""Run pytest on model-written code, contained. The verdict comes from pytest's junit XML, never a model.

Containment, outermost first:
- wall-clock timeout; on expiry the whole process tree dies (a PID namespace when we have one — killing its
  init kills everything, even processes that called setsid — else the process group);
- a fresh network namespace (no interfaces but a down loopback: no outbound connection) and a PID
  namespace, via util-linux `unshare`, when we are root or unprivileged user namespaces are allowed;
- as root, the tests run as `nobody` (setpriv), so RLIMIT_NPROC is enforced (root ignores it) and the real
  HOME is out of reach;
- resource limits: CPU time, address space, file size, process count;
- a scrubbed environment: no API keys or tokens; HOME and TMPDIR inside the run's `.sandbox/`;
- captured output capped.
Where namespaces are unavailable the run still happens, `network_isolated` is False and the report says so.
"""

from __future__ import annotations

import ast
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "PYTHONHASHSEED")


@dataclass(frozen=True)
class SandboxLimits:
    wall_timeout_s: float = 60.0
    cpu_time_s: int = 60
    address_space_bytes: int = 2 * 1024**3
    file_size_bytes: int = 64 * 1024**2
    max_processes: int = 64            # per user; enforced only for non-root, hence `nobody` when root
    output_cap_bytes: int = 64_000


@dataclass(frozen=True)
class TestFailure:
    name: str
    message: str
    traceback: str


@dataclass(frozen=True)
class TestReport:
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

    @property
    def ok(self) -> bool:
        return (self.collected > 0 and self.failed == 0 and self.errors == 0 and not self.timed_out
                and not self.import_errors)

    def summary(self) -> str:
        if self.timed_out:
            return f"timed out after {self.duration_s:.0f} s ({self.passed} passed before the kill)"
        if self.collected == 0:
            return "no tests collected" + (f" ({len(self.import_errors)} import errors)" if self.import_errors else "")
        parts = [f"{self.passed} passed"]
        parts += [f"{n} {w}" for n, w in ((self.failed, "failed"), (self.errors, "errors"),
                                          (self.skipped, "skipped")) if n]
        return ", ".join(parts) + f" in {self.duration_s:.2f} s"

    def feedback(self, limit: int = 3000) -> str:
        """What the developer sees in a fix round: verdict, import errors, each failure trimmed."""
        out = [f"pytest: {self.summary()}"]
        out += [f"import error: {e}" for e in self.import_errors]
        for f in self.failures:
            out.append(f"FAILED {f.name}: {f.message}\n{_trim(f.traceback, 900)}")
        if self.timed_out:
            out.append("The test run was killed at the time limit: look for an endless loop or input().")
        if self.collected == 0 and not self.import_errors:
            out.append(_trim(self.output, 1200))
        return _trim("\n".join(out), limit)


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit // 2] + "\n… (trimmed) …\n" + text[-limit // 2:]


# ------------------------------------------------------------------------------------------ checks


def check_modules(workspace: Path, python: str = sys.executable) -> tuple[str, ...]:
    """Syntax errors of each produced non-test module: file, line, message — precise, for the developer."""
    errors = []
    for path in sorted(workspace.rglob("*.py")):
        rel = path.relative_to(workspace)
        if rel.name.startswith("test_") or ".sandbox" in rel.parts or "__pycache__" in rel.parts:
            continue
        try:
            ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(rel))
        except SyntaxError as exc:
            errors.append(f"{rel}:{exc.lineno}: {exc.msg}")
    return tuple(errors)


# ------------------------------------------------------------------------------------------ running


def _namespaces_available() -> list[str]:
    """The `unshare` prefix that works here, or [] (then the run is not network-isolated)."""
    exe = shutil.which("unshare")
    if exe is None:
        return []
    base = [exe, "--net", "--pid", "--fork", "--kill-child"]
    for prefix in (base, [exe, "--user", "--map-root-user", *base[1:]]):
        try:
            ok = subprocess.run([*prefix, "--", "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return prefix
    return []


_NS_CACHE: list[list[str]] = []


def _ns_prefix() -> list[str]:
    if not _NS_CACHE:
        _NS_CACHE.append(_namespaces_available())
    return _NS_CACHE[0]


def _limits(limits: SandboxLimits) -> None:  # pragma: no cover - runs in the child before exec
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_time_s, limits.cpu_time_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _env(box: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env.update(HOME=str(box / "home"), TMPDIR=str(box / "tmp"), PYTHONDONTWRITEBYTECODE="1",
               PYTHONUNBUFFERED="1", NO_PROXY="*", no_proxy="*")
    return env


def _read_capped(stream: object, cap: int, sink: list[bytes]) -> None:
    total = 0
    while True:
        chunk = stream.read(65536)  # type: ignore[attr-defined]
        if not chunk:
            return
        if total < cap:
            sink.append(chunk[: cap - total])
        total += len(chunk)


def run_pytest(workspace: Path, *, limits: SandboxLimits = SandboxLimits(),
               python: str = sys.executable) -> TestReport:
    """Copy the workspace into a fresh staging folder and run pytest there, contained.

    Staging means a test can never alter the workspace itself, and (as root) the copy can be handed to
    `nobody` even when the project lives under a private home folder.
    """
    workspace = workspace.resolve()
    stage = Path(tempfile.mkdtemp(prefix="localcrew-sandbox-"))
    try:
        code = stage / "code"
        shutil.copytree(workspace, code, ignore=shutil.ignore_patterns(".sandbox", "__pycache__", ".pytest_cache"),
                        symlinks=True)
        box = stage / "box"
        for sub in ("home", "tmp"):
            (box / sub).mkdir(parents=True)
        return _run_staged(code, box, limits, python)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _run_staged(code: Path, box: Path, limits: SandboxLimits, python: str) -> TestReport:
    junit = box / "junit.xml"
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(junit),
            "-o", "junit_family=xunit2", "--rootdir", str(code), str(code)]
    prefix = _ns_prefix()
    if os.geteuid() == 0 and (setpriv := shutil.which("setpriv")):
        os.chmod(code.parent, 0o755)
        _chown_tree(code.parent, NOBODY)
        argv = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]
    started = time.monotonic()
    proc = subprocess.Popen([*prefix, "--", *argv] if prefix else argv, cwd=code, env=_env(box),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=lambda: _limits(limits))
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_capped, args=(proc.stdout, limits.output_cap_bytes, chunks))
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_tree(proc)
    reader.join(timeout=10)
    duration = time.monotonic() - started
    output = b"".join(chunks).decode("utf-8", errors="replace").replace(str(code) + "/", "")
    if timed_out:
        output += f"\n[localcrew] killed after {limits.wall_timeout_s:.0f} s wall-clock limit\n"
    counts, failures = _parse_junit(junit)
    return TestReport(collected=counts["tests"], passed=counts["passed"], failed=counts["failures"],
                      errors=counts["errors"], skipped=counts["skipped"], failures=failures, timed_out=timed_out,
                      exit_code=proc.returncode if proc.returncode is not None else -9,
                      output=output, duration_s=duration, network_isolated=bool(prefix),
                      import_errors=check_modules(code, python))


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    # With a PID namespace, killing unshare's child (the namespace's init) kills every process inside;
    # the group kill covers the no-namespace case.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            try:
                os.lchown(name, uid, uid)
            except OSError:
                pass


def _parse_junit(path: Path) -> tuple[dict[str, int], tuple[TestFailure, ...]]:
    counts = {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not path.exists():
        return counts, ()
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return counts, ()
    failures = []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        bad = case.find("failure")
        err = case.find("error")
        if bad is not None or err is not None:
            node = bad if bad is not None else err
            assert node is not None
            counts["failures" if bad is not None else "errors"] += 1
            failures.append(TestFailure(name=name, message=(node.get("message") or "").strip()[:500],
                                        traceback=(node.text or "").strip()))
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
        counts["tests"] += 1
    # Collection errors (a test file that does not import) appear as suite-level errors with no testcase.
    for suite in root.iter("testsuite"):
        suite_errors = int(suite.get("errors", "0"))
        counted = sum(1 for c in suite.iter("testcase") if c.find("error") is not None)
        counts["errors"] += max(0, suite_errors - counted)
    return counts, tuple(failures)
