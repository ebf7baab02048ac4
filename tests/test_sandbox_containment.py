"""The sandbox's containment, proven with real subprocesses: limits, isolation, and nothing outlives a run.

Each hostile case from issue #6 runs for real. Most share one sandbox run (the "hostile suite") to keep this
file fast on two cores; the cases that end a run (a timeout, a fork bomb) get their own.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from crew.sandbox import SandboxLimits, SandboxMode, TestFailure, TestReport, run_pytest, sandbox_mode
from tests.sandbox_helpers import QUICK, WRONG, processes_with, workspace

# ------------------------------------------------------------------------------------------ containment


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestReport, dict[str, object]]]:
    """One sandbox run of a suite that misbehaves in every way that does not end the run."""
    base = tmp_path_factory.mktemp("hostile")
    decoy_home = base / "home"
    (decoy_home / "precious").mkdir(parents=True)
    (decoy_home / "precious" / "thesis.txt").write_text("years of work\n")
    decoy_file = base / "outside.txt"
    decoy_file.write_text("original\n")
    marker = f"localcrew-{uuid.uuid4().hex[:12]}"
    escape = f"/tmp/{marker}-escape.txt"

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    suite = f'''
import os, shutil, socket, subprocess, sys
import pytest

def test_memory_bomb():
    hog = []
    with pytest.raises(MemoryError):
        while True:
            hog.append(bytearray(64 * 1024 * 1024))

def test_many_files_fill_only_the_capped_tmpfs():
    try:
        with pytest.raises(OSError) as err:
            for i in range(100):
                with open(f"fill-{{i}}.bin", "wb") as fh:
                    fh.write(b"x" * 1024 * 1024)
        assert err.value.errno == 28  # ENOSPC: the stage is a size-capped tmpfs, not the host's disk
    finally:
        for name in os.listdir("."):
            if name.startswith("fill-"):
                os.remove(name)

def test_huge_write():
    with pytest.raises(OSError) as err, open("big.bin", "wb") as fh:
        for _ in range(64):
            fh.write(b"x" * 1024 * 1024)
            fh.flush()
    assert err.value.errno == 27  # EFBIG: the file-size limit

def test_write_outside():
    with pytest.raises(OSError):
        open({str(decoy_file)!r}, "w").write("overwritten")
    with pytest.raises(OSError):
        open("/etc/localcrew-sandbox-escape", "w").write("x")
    open({escape!r}, "w").write("only the throwaway tmpfs sees this")

def test_connect_local_server():
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", {port}), timeout=3)

def test_connect_internet():
    with pytest.raises(OSError):
        socket.create_connection(("1.1.1.1", 53), timeout=3)

def test_rm_rf_home():
    assert os.environ["HOME"] != {str(decoy_home)!r}
    os.system("rm -rf ~ 2>/dev/null")
    os.system("rm -rf {decoy_home} 2>/dev/null")
    shutil.rmtree({str(decoy_home)!r}, ignore_errors=True)

def test_no_secrets_in_env():
    leaked = sorted(k for k in os.environ if any(w in k for w in ("KEY", "TOKEN", "SECRET")))
    assert leaked == []

def test_input_does_not_hang():
    with pytest.raises(OSError):
        input("your name? ")

def test_raw_stdin_is_empty():
    assert os.read(0, 10) == b""

def test_leaves_background_processes():
    subprocess.Popen(["sleep", "300", "{marker}"])
    subprocess.Popen(["sleep", "300", "{marker}"], start_new_session=True)
'''
    ws = workspace(base / "ws", {"test_hostile.py": suite})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(decoy_home))
        mp.setenv("OPENAI_API_KEY", "sk-do-not-leak")
        mp.setenv("HF_TOKEN", "hf_do_not_leak")
        limits = SandboxLimits(wall_timeout_s=60, address_space_bytes=1024**3, file_size_bytes=4 * 1024**2,
                               tmpfs_bytes=32 * 1024**2)
        started = time.monotonic()
        report = run_pytest(ws, limits=limits)
        elapsed = time.monotonic() - started
    time.sleep(0.3)  # give a stray connection time to land
    stop.set()
    thread.join()
    server.close()
    yield report, {"decoy_home": decoy_home, "decoy_file": decoy_file, "escape": escape, "marker": marker,
                   "accepted": accepted, "elapsed": elapsed, "ws": ws}


def _outcome(report: TestReport, name: str) -> TestFailure | None:
    return next((f for f in report.failures if f.name.endswith(f"::{name}")), None)


def test_hostile_suite_ran_to_the_end(hostile: tuple[TestReport, dict[str, object]]) -> None:
    report, ctx = hostile
    assert report.collected == 11 and not report.timed_out and not report.died, report.output
    assert float(str(ctx["elapsed"])) < 30
    if sandbox_mode().mount:  # with every namespace, every hostile test is contained
        assert report.failures == (), report.feedback()


def test_memory_bomb_is_stopped_by_the_memory_limit(hostile: tuple[TestReport, dict[str, object]]) -> None:
    assert _outcome(hostile[0], "test_memory_bomb") is None


def test_huge_write_is_stopped_by_the_file_size_limit(hostile: tuple[TestReport, dict[str, object]]) -> None:
    report, ctx = hostile
    assert _outcome(report, "test_huge_write") is None
    assert not (Path(str(ctx["ws"])) / "big.bin").exists()  # the workspace itself is never touched


def test_many_files_cannot_fill_the_disk(hostile: tuple[TestReport, dict[str, object]]) -> None:
    if not sandbox_mode().mount:
        pytest.skip(reason="no mount namespace here: the stage is on disk, each file capped by RLIMIT_FSIZE only")
    assert _outcome(hostile[0], "test_many_files_fill_only_the_capped_tmpfs") is None


def test_writes_outside_the_workspace_do_not_land(hostile: tuple[TestReport, dict[str, object]]) -> None:
    report, ctx = hostile
    assert _outcome(report, "test_write_outside") is None
    assert Path(str(ctx["decoy_file"])).read_text() == "original\n"
    assert not Path("/etc/localcrew-sandbox-escape").exists()
    mode = sandbox_mode()
    if mode.mount:
        assert not Path(str(ctx["escape"])).exists()  # it went to the run's throwaway /tmp
    else:
        Path(str(ctx["escape"])).unlink(missing_ok=True)


def test_rm_rf_home_hits_only_the_decoy_inside_the_run(hostile: tuple[TestReport, dict[str, object]]) -> None:
    report, ctx = hostile
    assert _outcome(report, "test_rm_rf_home") is None
    assert (Path(str(ctx["decoy_home"])) / "precious" / "thesis.txt").read_text() == "years of work\n"
    assert _outcome(report, "test_no_secrets_in_env") is None


def test_no_network(hostile: tuple[TestReport, dict[str, object]]) -> None:
    report, ctx = hostile
    if not report.network_isolated:
        pytest.skip(reason=f"no network namespace on this machine — the report says so: {report.isolation}")
    assert _outcome(report, "test_connect_local_server") is None
    assert _outcome(report, "test_connect_internet") is None
    assert ctx["accepted"] == []  # the host's server never saw a connection


def test_reading_stdin_never_hangs(hostile: tuple[TestReport, dict[str, object]]) -> None:
    assert _outcome(hostile[0], "test_input_does_not_hang") is None
    assert _outcome(hostile[0], "test_raw_stdin_is_empty") is None


def test_no_process_outlives_the_run(hostile: tuple[TestReport, dict[str, object]]) -> None:
    assert processes_with(str(hostile[1]["marker"])) == []


@pytest.mark.slow
def test_infinite_loop_is_killed_at_the_wall_clock_limit(tmp_path: Path) -> None:
    marker = f"localcrew-{uuid.uuid4().hex[:12]}"
    ws = workspace(tmp_path / "ws", {"test_loop.py": (
        "import subprocess\n\ndef test_fine():\n    pass\n\n"
        f"def test_loop():\n    subprocess.Popen(['sleep', '300', '{marker}'], start_new_session=True)\n"
        "    while True:\n        pass\n")})
    started = time.monotonic()
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=3))
    assert time.monotonic() - started < 10
    assert processes_with(marker) == []  # the kill took the whole tree, even a child that called setsid
    assert report.timed_out and not report.ok and report.passed == 1
    assert report.running_at_kill == "test_loop.py::test_loop"
    assert "while running test_loop.py::test_loop" in report.summary()
    assert "endless loop" in report.feedback()


@pytest.mark.slow
def test_cpu_time_limit_kills_a_busy_test(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"test_spin.py": "def test_spin():\n    while True:\n        pass\n"})
    started = time.monotonic()
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=60, cpu_time_s=1))
    assert time.monotonic() - started < 20
    assert not report.timed_out and not report.ok and report.died
    assert report.running_at_kill == "test_spin.py::test_spin"
    assert "pytest itself died" in report.feedback()


@pytest.mark.slow
def test_import_that_never_finishes_is_named(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"slow.py": "import time\ntime.sleep(3600)\n",
                                      "test_slow.py": "import slow\n"})
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=2))
    assert report.timed_out
    assert report.import_errors == ("slow.py: importing it never finished (killed at the time limit): "
                                    "code at module level loops or waits",)


@pytest.mark.slow
def test_fork_bomb_is_bounded_and_leaves_nothing_behind(tmp_path: Path) -> None:
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"  # `sleep` accepts it; we look for it afterwards
    bomb = f'''
import os

def test_bomb():
    root = os.getpid()
    while True:
        try:
            os.fork()  # parent and every child keep forking
        except OSError:
            if os.getpid() != root:
                os.execv("/bin/sleep", ["sleep", "{marker}"])
            raise
'''
    ws = workspace(tmp_path / "ws", {"test_bomb.py": bomb})
    started = time.monotonic()
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=30, max_processes=64))
    assert time.monotonic() - started < 30
    assert not report.timed_out and report.failed == 1, report.output
    assert "Resource temporarily unavailable" in report.failures[0].message
    assert processes_with(marker) == []


# ------------------------------------------------------------------------------------------ nothing outlives


@pytest.mark.slow
def test_setsid_and_a_cleared_death_signal_do_not_outlive_the_run(tmp_path: Path) -> None:
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    escape = (
        "import ctypes, os, subprocess, time\n\ndef test_escape():\n    os.setsid()\n"
        "    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG: none\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n    time.sleep(300)\n")
    ws = workspace(tmp_path / "ws", {"test_escape.py": escape})
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=5))
    assert report.timed_out
    assert processes_with(marker) == [] and processes_with(str(ws)) == []
    assert "killed at the 5 s time limit" in report.summary()
    assert report.duration_s < 9


def test_sysv_ipc_objects_stay_inside_the_run(tmp_path: Path) -> None:
    key = 0x10C0 + uuid.uuid4().int % 0xFFFF
    suite = (
        "import ctypes\n\ndef test_ipc():\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        f"    assert libc.shmget({key}, 1 << 20, 0o1666) >= 0\n    assert libc.msgget({key}, 0o1666) >= 0\n")
    ws = workspace(tmp_path / "ws", {"test_ipc.py": suite})
    report = run_pytest(ws, limits=QUICK)
    assert report.ok, report.feedback()
    leaked = []
    for kind, flag in (("shm", "-M"), ("msg", "-Q")):
        if str(key) in Path(f"/proc/sysvipc/{kind}").read_text().split():
            leaked.append(kind)
            os.system(f"ipcrm {flag} {key}")
    assert leaked == []


def test_inside_only_the_stage_the_interpreter_and_packages_are_visible(tmp_path: Path) -> None:
    import sys

    project = Path(__file__).resolve().parents[1]
    sibling = tmp_path / "other-run"
    sibling.mkdir()
    (sibling / "run.jsonl").write_text("{}\n")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-secret\n")
    suite = (
        "import os, sys\nfrom pathlib import Path\n\ndef test_private():\n"
        f"    for p in [{str(project / '.git')!r}, {str(project / 'pyproject.toml')!r},"
        f" {str(project / 'crew')!r}, {str(sibling)!r}, {str(tmp_path / '.env')!r}]:\n"
        "        assert not os.path.exists(p), p\n"
        "    assert not Path('/root/.bashrc').exists() and not Path('/home').exists()\n"
        "    assert 'NoNewPrivs:\\t1' in Path('/proc/self/status').read_text()\n"
        f"    assert os.path.exists({sys.executable!r})\n"
        "    import pytest, hypothesis  # installed packages are there\n")
    ws = workspace(tmp_path / "ws", {"test_private.py": suite})
    report = run_pytest(ws, limits=QUICK)
    if not sandbox_mode().mount:
        pytest.skip(reason=f"no mount namespace here: {report.isolation}")
    assert report.ok, report.feedback()


def test_memfds_count_against_the_memory_cap(tmp_path: Path) -> None:
    suite = (
        "import os\n\ndef test_memfds():\n    held = []\n    for i in range(24):\n"
        "        fd = os.memfd_create(f'm{i}')\n        os.write(fd, b'x' * 32 * 1024 * 1024)\n"
        "        held.append(fd)\n")
    ws = workspace(tmp_path / "ws", {"test_memfd.py": suite})
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=60, memory_bytes=512 * 1024**2))
    if "memory.max" not in report.isolation:
        pytest.skip(reason=f"no cgroup v2 memory controller here: {report.isolation}")
    assert not report.ok and report.passed == 0, report.feedback()


def test_the_user_namespace_mode_holds_no_capability_and_keeps_the_verdict(tmp_path: Path) -> None:
    """What a normal user gets: root of a user namespace, so the worker must shed every capability."""
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip(reason="no unshare here")
    userns = SandboxMode((unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--ipc", "--fork",
                          "--kill-child", "--mount-proc"), mount=True, drop_uid=None, fresh_userns=True)
    suite = ("from pathlib import Path\nfrom calc import add\n\ndef test_caps():\n"
             "    status = Path('/proc/self/status').read_text()\n"
             "    assert 'CapEff:\\t0000000000000000' in status and 'CapBnd:\\t0000000000000000' in status\n\n"
             "def test_supervisor_is_out_of_reach():\n    import pytest\n"
             "    with pytest.raises(OSError):\n        open('/proc/1/mem', 'rb').read(1)\n\n"
             "def test_add():\n    assert add(2, 2) == 4\n")
    ws = workspace(tmp_path / "ws", {**WRONG, "test_calc.py": suite,
                                      "tests/test_nested.py": "from helper import X\n\ndef test_x():\n    assert X\n",
                                      "tests/helper.py": "X = 1\n"})
    try:
        report = run_pytest(ws, limits=QUICK, mode=userns)
    except OSError as exc:
        pytest.skip(reason=f"user namespaces are not allowed here: {exc}")
    if report.collected == 0 and report.died:
        pytest.skip(reason=f"user namespaces are not allowed here: {report.output[-300:]}")
    assert (report.passed, report.failed) == (3, 1), report.feedback()
    assert report.failures[0].name == "test_calc.py::test_add"


@pytest.mark.slow
def test_without_namespaces_the_cgroup_still_ends_an_escaped_process(tmp_path: Path) -> None:
    plain = SandboxMode((), mount=False, drop_uid=None, fresh_userns=False)
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    escape = ("import ctypes, os, subprocess\n\ndef test_escape():\n    os.setsid()\n"
              "    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)\n"
              f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n")
    ws = workspace(tmp_path / "ws", {"test_escape.py": escape})
    report = run_pytest(ws, limits=QUICK, mode=plain)
    survivors = processes_with(marker)
    for entry in Path("/proc").iterdir():  # a machine without a writable cgroup v2: clean up, then say why
        if entry.name.isdigit() and survivors:
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(entry.name), 9)
            except OSError:
                continue
    if "cgroup" not in report.isolation or "no cgroup" in report.isolation or "not writable" in report.isolation:
        pytest.skip(reason=f"no writable cgroup v2 here: {report.isolation}")
    assert report.ok and survivors == [], report.feedback()
