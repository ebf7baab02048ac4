"""The sandboxed pytest runner, proven with real subprocesses: verdicts, precise errors, and containment.

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

from crew.tools.sandbox import (
    SandboxLimits,
    SandboxMode,
    TestFailure,
    TestReport,
    check_modules,
    run_pytest,
    sandbox_mode,
)

QUICK = SandboxLimits(wall_timeout_s=30)


def _workspace(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def _processes_with(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (how we look for survivors)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found


# ------------------------------------------------------------------------------------------ verdicts


def test_counts_names_and_tracebacks_come_from_pytest(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {
        "calc.py": "def add(a, b):\n    return a + b\n",
        "test_calc.py": (
            "import pytest\nfrom calc import add\n\n"
            "def test_add():\n    assert add(1, 2) == 3\n\n"
            "def test_wrong():\n    assert add(2, 2) == 5\n\n"
            "@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n\n"
            "@pytest.fixture\ndef broken():\n    raise RuntimeError('fixture broke')\n\n"
            "def test_uses_broken(broken):\n    pass\n"
        ),
    })
    report = run_pytest(ws, limits=QUICK)
    assert (report.collected, report.passed, report.failed, report.errors, report.skipped) == (4, 1, 1, 1, 1)
    assert not report.ok and not report.timed_out and report.exit_code == 1
    names = [f.name for f in report.failures]
    assert names == ["test_calc.py::test_wrong", "test_calc.py::test_uses_broken [setup]"]
    assert "assert 4 == 5" in report.failures[0].message
    assert "fixture broke" in report.failures[1].message
    feedback = report.feedback()
    assert "FAILED test_calc.py::test_wrong" in feedback and "assert 4 == 5" in feedback
    assert len(feedback) < 3000
    assert report.summary().startswith("1 passed, 1 failed, 1 errors, 1 skipped in ")
    assert "1 failed" in report.output  # pytest's own terminal output, captured


def test_a_normal_suite_has_what_it_needs(tmp_path: Path) -> None:
    """Containment must not break ordinary tests: tmp_path, files in cwd, a python subprocess, HOME."""
    suite = (
        "import os, subprocess, sys\nfrom pathlib import Path\nfrom m import X\n\n"
        "def test_x(tmp_path):\n    (tmp_path / 'a.txt').write_text('a')\n"
        "    Path('out.txt').write_text('b')\n    Path(os.path.expanduser('~/.cfg')).write_text('c')\n"
        "    out = subprocess.run([sys.executable, '-c', 'import m; print(m.X)'],\n"
        "                         capture_output=True, text=True)\n"
        "    assert out.stdout == '1\\n', out.stderr\n    assert X == 1\n"
    )
    ws = _workspace(tmp_path / "ws", {"m.py": "X = 1\n", "test_m.py": suite})
    report = run_pytest(ws, limits=QUICK)
    assert report.ok, report.feedback()
    assert report.summary().startswith("1 passed in ")
    assert not (ws / "out.txt").exists()  # tests write into the staging copy, never the workspace


def test_syntax_and_import_errors_are_precise(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {
        "broken.py": "def f(:\n    pass\n",
        "names.py": "import os\n\nVALUE = undefined_name + 1\n",
        "deps.py": "import numpyy_does_not_exist\n",
        "pkg/__init__.py": "",
        "pkg/inner.py": "raise SystemExit(3)\n",
        "test_x.py": "def test_x():\n    assert True\n",
    })
    errors = check_modules(ws)
    assert errors[0].startswith("broken.py:1: SyntaxError: ")
    assert "names.py:3: NameError: name 'undefined_name' is not defined" in errors
    assert "deps.py:1: ModuleNotFoundError: No module named 'numpyy_does_not_exist'" in errors
    assert any(e.startswith("pkg/inner.py:1: SystemExit") for e in errors)
    report = run_pytest(ws, limits=QUICK)
    assert report.import_errors == errors
    assert report.passed == 1 and not report.ok  # green tests do not hide a module that will not import
    assert "import error: names.py:3: NameError" in report.feedback()


def test_syntax_errors_alone_need_no_subprocess(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"a.py": "x = (\n"})
    assert check_modules(ws) == ("a.py:1: SyntaxError: '(' was never closed — `x = (`",)


def test_a_test_file_that_does_not_import_is_an_error(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"test_gone.py": "from nowhere import thing\n\n"
                                      "def test_a():\n    pass\n"})
    report = run_pytest(ws, limits=QUICK)
    assert report.collected == 0 and report.errors == 1 and not report.ok
    assert report.failures[0].name == "test_gone.py [collect]"
    assert "nowhere" in report.failures[0].message


def test_the_workspace_config_cannot_change_how_we_run(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {
        "pytest.ini": "[pytest]\naddopts = -x --collect-only\n",
        "test_a.py": "def test_a():\n    assert False\n\ndef test_b():\n    assert True\n",
    })
    report = run_pytest(ws, limits=QUICK)
    assert (report.passed, report.failed) == (1, 1)


def test_output_is_capped_keeping_the_summary(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"test_noise.py": "def test_noise():\n"
                                      "    print('x' * 2_000_000)\n    assert False\n"})
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=30, output_cap_bytes=10_000))
    assert len(report.output) < 11_000 and "bytes of output dropped" in report.output
    assert "1 failed" in report.output  # the tail, where pytest's summary is, survives


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
    ws = _workspace(base / "ws", {"test_hostile.py": suite})
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
    assert _processes_with(str(hostile[1]["marker"])) == []


@pytest.mark.slow
def test_infinite_loop_is_killed_at_the_wall_clock_limit(tmp_path: Path) -> None:
    marker = f"localcrew-{uuid.uuid4().hex[:12]}"
    ws = _workspace(tmp_path / "ws", {"test_loop.py": (
        "import subprocess\n\ndef test_fine():\n    pass\n\n"
        f"def test_loop():\n    subprocess.Popen(['sleep', '300', '{marker}'], start_new_session=True)\n"
        "    while True:\n        pass\n")})
    started = time.monotonic()
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=3))
    assert time.monotonic() - started < 10
    assert _processes_with(marker) == []  # the kill took the whole tree, even a child that called setsid
    assert report.timed_out and not report.ok and report.passed == 1
    assert report.running_at_kill == "test_loop.py::test_loop"
    assert "while running test_loop.py::test_loop" in report.summary()
    assert "endless loop" in report.feedback()


@pytest.mark.slow
def test_cpu_time_limit_kills_a_busy_test(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"test_spin.py": "def test_spin():\n    while True:\n        pass\n"})
    started = time.monotonic()
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=60, cpu_time_s=1))
    assert time.monotonic() - started < 20
    assert not report.timed_out and not report.ok and report.died
    assert report.running_at_kill == "test_spin.py::test_spin"
    assert "pytest itself died" in report.feedback()


@pytest.mark.slow
def test_import_that_never_finishes_is_named(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"slow.py": "import time\ntime.sleep(3600)\n",
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
    ws = _workspace(tmp_path / "ws", {"test_bomb.py": bomb})
    started = time.monotonic()
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=30, max_processes=64))
    assert time.monotonic() - started < 30
    assert not report.timed_out and report.failed == 1, report.output
    assert "Resource temporarily unavailable" in report.failures[0].message
    assert _processes_with(marker) == []


# ------------------------------------------------------------------------------------------ modes


def test_the_chosen_mode_is_named_in_every_report(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"test_a.py": "def test_a():\n    pass\n"})
    report = run_pytest(ws, limits=QUICK)
    assert report.isolation.startswith(sandbox_mode().describe())
    if os.geteuid() == 0 and sandbox_mode().drop_uid is not None:
        assert "runs as uid 65534" in report.isolation


def test_the_fallback_without_namespaces_still_runs_and_says_so(tmp_path: Path) -> None:
    plain = SandboxMode((), mount=False, drop_uid=None, fresh_userns=False)
    ws = _workspace(tmp_path / "ws", {"test_a.py": "def test_a():\n    pass\n"})
    report = run_pytest(ws, limits=QUICK, mode=plain)
    assert report.ok and not report.network_isolated
    assert "NO network isolation" in report.isolation


def test_no_working_python_is_a_clear_error() -> None:
    from crew.errors import WorkflowError

    with pytest.raises(WorkflowError, match="cannot start python"):
        sandbox_mode("/nonexistent/python3")


def test_feedback_stays_short_with_many_long_failures() -> None:
    failures = tuple(TestFailure(f"test_m.py::test_{i}", f"assert {i} == 0",
                                 "frame\n" * 2000 + f"E   boom {i}") for i in range(12))
    report = TestReport(collected=12, passed=0, failed=12, errors=0, skipped=0, failures=failures,
                        timed_out=False, exit_code=1, output="", duration_s=0.5, network_isolated=True,
                        import_errors=("calc.py:3: NameError: name 'x' is not defined",))
    text = report.feedback()
    assert len(text) <= 3100
    assert text.startswith("pytest: 12 failed, 1 import errors in 0.50 s")
    assert "import error: calc.py:3: NameError" in text and "E   boom 0" in text  # the end of each traceback
    assert "… and 7 more failures" in text


# ------------------------------------------------------------------------------------------ forged verdicts
# Issue 13 §1: each of these turned failing tests into PASS on wrong code. The files are put into the
# workspace directly (as if they got past the Workspace policy), so the sandbox's own defences are tested.

_WRONG = {"calc.py": "def add(a, b):\n    return a - b\n",
          "test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"}


def _assert_still_fails(report: TestReport) -> None:
    assert not report.ok, report.feedback()
    assert report.passed == 0, report.feedback()


def test_a_conftest_hookwrapper_cannot_turn_a_failure_into_a_pass(tmp_path: Path) -> None:
    conftest = (
        "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    report = outcome.get_result()\n    report.outcome = 'passed'\n")
    ws = _workspace(tmp_path / "ws", {**_WRONG, "conftest.py": conftest, "sub/conftest.py": conftest})
    report = run_pytest(ws, limits=QUICK)
    _assert_still_fails(report)
    assert report.failed == 1
    assert any(t.startswith("conftest.py: left out of the test run") for t in report.tampered)
    assert any(t.startswith("sub/conftest.py: left out") for t in report.tampered)
    assert "2 refused by the sandbox" in report.summary()
    assert "refused by the sandbox: conftest.py" in report.feedback()


def test_collect_ignore_glob_cannot_hide_the_real_tests(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {**_WRONG, "conftest.py": "collect_ignore_glob = ['test_*.py']\n",
                                      "calc_test.py": "def test_fine():\n    assert True\n"})
    report = run_pytest(ws, limits=QUICK)
    assert report.failed == 1 and report.collected == 2 and not report.ok, report.feedback()


def test_a_fake_pytest_module_is_never_imported(tmp_path: Path) -> None:
    fake = ("import json, os, sys\n\ndef main(args=None, plugins=None):\n"
            "    for p in plugins or []:\n        ev = getattr(p, 'events', None)\n"
            "        if ev:\n            ev.emit(e='collected', n=1, ids=['test_calc.py::test_add'])\n"
            "            for w in ('setup', 'call', 'teardown'):\n"
            "                ev.emit(e='report', nodeid='test_calc.py::test_add', when=w, outcome='passed')\n"
            "    return 0\n")
    ws = _workspace(tmp_path / "ws", {**_WRONG, "pytest.py": fake})
    report = run_pytest(ws, limits=QUICK)
    _assert_still_fails(report)
    assert report.failed == 1
    assert any("`pytest.py` would hide `pytest`" in t for t in report.tampered)


def test_the_code_under_test_cannot_reach_the_reporter_through_gc(tmp_path: Path) -> None:
    attack = (
        "import gc\n\ntry:\n    for o in gc.get_objects():\n"
        "        if type(o).__name__ in ('_Events', '_Recorder') and hasattr(o, 'emit'):\n"
        "            real = o.emit\n"
        "            def emit(real=real, **e):\n"
        "                if e.get('outcome') == 'failed':\n"
        "                    e = {k: v for k, v in e.items() if k not in ('message', 'longrepr')}\n"
        "                    e['outcome'] = 'passed'\n"
        "                real(**e)\n"
        "            o.emit = emit\nexcept Exception:\n    pass\n\n"
        "def add(a, b):\n    return a - b\n")
    ws = _workspace(tmp_path / "ws", {**_WRONG, "calc.py": attack})
    report = run_pytest(ws, limits=QUICK)
    _assert_still_fails(report)
    assert report.failed == 1, report.feedback()


def test_events_forged_on_a_descriptor_are_caught(tmp_path: Path) -> None:
    forged = ('{"e": "report", "nodeid": "test_calc.py::test_add", "when": "%s", "outcome": "passed"}\\n')
    attack = (
        "import os\n\nfor fd in range(3, 64):\n    for when in ('setup', 'call', 'teardown'):\n"
        "        try:\n"
        f"            os.write(fd, ('{forged}' % when).encode())\n"
        "        except OSError:\n            pass\n\n"
        "def add(a, b):\n    return a - b\n")
    ws = _workspace(tmp_path / "ws", {**_WRONG, "calc.py": attack})
    report = run_pytest(ws, limits=QUICK)
    assert not report.ok, report.feedback()
    assert report.failed == 1 and report.tampered, report.feedback()
    assert "came twice or out of order" in report.feedback()


def test_pytest_plugins_in_a_test_file_are_refused(tmp_path: Path) -> None:
    plug = ("import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")
    tests = "pytest_plugins = ['test_plug']\nfrom calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"
    ws = _workspace(tmp_path / "ws", {**_WRONG, "test_calc.py": tests, "test_plug.py": plug})
    report = run_pytest(ws, limits=QUICK)
    _assert_still_fails(report)
    assert "pytest_plugins` in a test file is refused" in report.feedback()


def test_a_top_level_init_does_not_break_collection(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"__init__.py": "", "calc.py": "def add(a, b):\n    return a + b\n",
                                      "test_calc.py": _WRONG["test_calc.py"]})
    report = run_pytest(ws, limits=QUICK)
    assert report.ok and report.passed == 1, report.feedback()


def test_a_module_the_parser_chokes_on_is_a_syntax_error_from_the_sandbox(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", {"big.py": "X = " + "-" * 100_000 + "1\n",
                                      "test_big.py": "def test_a():\n    assert True\n"})
    errors = check_modules(ws)
    assert len(errors) == 1 and errors[0].startswith("big.py: SyntaxError: the parser gave up"), errors
    report = run_pytest(ws, limits=QUICK)
    assert report.import_errors == errors and not report.ok


def test_the_boot_file_needs_nothing_but_the_standard_library() -> None:
    import subprocess
    import sys

    import crew.tools.sandbox.boot as boot

    probe = ("import importlib.util, sys\n"
             f"spec = importlib.util.spec_from_file_location('boot', {boot.__file__!r})\n"
             "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
             "assert not [m for m in sys.modules if m.split('.')[0] in ('crew', 'pytest')], sorted(sys.modules)\n")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------ nothing outlives


@pytest.mark.slow
def test_setsid_and_a_cleared_death_signal_do_not_outlive_the_run(tmp_path: Path) -> None:
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    escape = (
        "import ctypes, os, subprocess, time\n\ndef test_escape():\n    os.setsid()\n"
        "    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG: none\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n    time.sleep(300)\n")
    ws = _workspace(tmp_path / "ws", {"test_escape.py": escape})
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=5))
    assert report.timed_out
    assert _processes_with(marker) == [] and _processes_with(str(ws)) == []
    assert "killed at the 5 s time limit" in report.summary()
    assert report.duration_s < 9


def test_sysv_ipc_objects_stay_inside_the_run(tmp_path: Path) -> None:
    key = 0x10C0 + uuid.uuid4().int % 0xFFFF
    suite = (
        "import ctypes\n\ndef test_ipc():\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        f"    assert libc.shmget({key}, 1 << 20, 0o1666) >= 0\n    assert libc.msgget({key}, 0o1666) >= 0\n")
    ws = _workspace(tmp_path / "ws", {"test_ipc.py": suite})
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
    ws = _workspace(tmp_path / "ws", {"test_private.py": suite})
    report = run_pytest(ws, limits=QUICK)
    if not sandbox_mode().mount:
        pytest.skip(reason=f"no mount namespace here: {report.isolation}")
    assert report.ok, report.feedback()


def test_memfds_count_against_the_memory_cap(tmp_path: Path) -> None:
    suite = (
        "import os\n\ndef test_memfds():\n    held = []\n    for i in range(24):\n"
        "        fd = os.memfd_create(f'm{i}')\n        os.write(fd, b'x' * 32 * 1024 * 1024)\n"
        "        held.append(fd)\n")
    ws = _workspace(tmp_path / "ws", {"test_memfd.py": suite})
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
    ws = _workspace(tmp_path / "ws", {**_WRONG, "test_calc.py": suite,
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
    ws = _workspace(tmp_path / "ws", {"test_escape.py": escape})
    report = run_pytest(ws, limits=QUICK, mode=plain)
    survivors = _processes_with(marker)
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
