"""The sandboxed pytest runner, proven with real subprocesses: verdicts, precise errors, launch modes, and
verdicts that agent-written files try to forge. Containment (limits, isolation, nothing outlives the run)
is tests/test_sandbox_containment.py; the inside's own files, tests/test_sandbox_inside.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crew.sandbox import (
    SandboxLimits,
    SandboxMode,
    TestFailure,
    TestReport,
    check_modules,
    run_pytest,
    sandbox_mode,
)
from tests.sandbox_helpers import QUICK, WRONG, workspace

# ------------------------------------------------------------------------------------------ verdicts


def test_counts_names_and_tracebacks_come_from_pytest(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {
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
    ws = workspace(tmp_path / "ws", {"m.py": "X = 1\n", "test_m.py": suite})
    report = run_pytest(ws, limits=QUICK)
    assert report.ok, report.feedback()
    assert report.summary().startswith("1 passed in ")
    assert not (ws / "out.txt").exists()  # tests write into the staging copy, never the workspace


def test_syntax_and_import_errors_are_precise(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {
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
    ws = workspace(tmp_path / "ws", {"a.py": "x = (\n"})
    assert check_modules(ws) == ("a.py:1: SyntaxError: '(' was never closed — `x = (`",)


def test_a_test_file_that_does_not_import_is_an_error(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"test_gone.py": "from nowhere import thing\n\n"
                                      "def test_a():\n    pass\n"})
    report = run_pytest(ws, limits=QUICK)
    assert report.collected == 0 and report.errors == 1 and not report.ok
    assert report.failures[0].name == "test_gone.py [collect]"
    assert "nowhere" in report.failures[0].message


def test_the_workspace_config_cannot_change_how_we_run(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {
        "pytest.ini": "[pytest]\naddopts = -x --collect-only\n",
        "test_a.py": "def test_a():\n    assert False\n\ndef test_b():\n    assert True\n",
    })
    report = run_pytest(ws, limits=QUICK)
    assert (report.passed, report.failed) == (1, 1)


def test_output_is_capped_keeping_the_summary(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"test_noise.py": "def test_noise():\n"
                                      "    print('x' * 2_000_000)\n    assert False\n"})
    report = run_pytest(ws, limits=SandboxLimits(wall_timeout_s=30, output_cap_bytes=10_000))
    assert len(report.output) < 11_000 and "bytes of output dropped" in report.output
    assert "1 failed" in report.output  # the tail, where pytest's summary is, survives


# ------------------------------------------------------------------------------------------ modes


def test_the_chosen_mode_is_named_in_every_report(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"test_a.py": "def test_a():\n    pass\n"})
    report = run_pytest(ws, limits=QUICK)
    assert report.isolation.startswith(sandbox_mode().describe())
    if os.geteuid() == 0 and sandbox_mode().drop_uid is not None:
        assert "runs as uid 65534" in report.isolation


def test_the_fallback_without_namespaces_still_runs_and_says_so(tmp_path: Path) -> None:
    plain = SandboxMode((), mount=False, drop_uid=None, fresh_userns=False)
    ws = workspace(tmp_path / "ws", {"test_a.py": "def test_a():\n    pass\n"})
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

def _assert_still_fails(report: TestReport) -> None:
    assert not report.ok, report.feedback()
    assert report.passed == 0, report.feedback()


def test_a_conftest_hookwrapper_cannot_turn_a_failure_into_a_pass(tmp_path: Path) -> None:
    conftest = (
        "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    report = outcome.get_result()\n    report.outcome = 'passed'\n")
    ws = workspace(tmp_path / "ws", {**WRONG, "conftest.py": conftest, "sub/conftest.py": conftest})
    report = run_pytest(ws, limits=QUICK)
    _assert_still_fails(report)
    assert report.failed == 1
    assert any(t.startswith("conftest.py: left out of the test run") for t in report.tampered)
    assert any(t.startswith("sub/conftest.py: left out") for t in report.tampered)
    assert "2 refused by the sandbox" in report.summary()
    assert "refused by the sandbox: conftest.py" in report.feedback()


def test_collect_ignore_glob_cannot_hide_the_real_tests(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {**WRONG, "conftest.py": "collect_ignore_glob = ['test_*.py']\n",
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
    ws = workspace(tmp_path / "ws", {**WRONG, "pytest.py": fake})
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
    ws = workspace(tmp_path / "ws", {**WRONG, "calc.py": attack})
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
    ws = workspace(tmp_path / "ws", {**WRONG, "calc.py": attack})
    report = run_pytest(ws, limits=QUICK)
    assert not report.ok, report.feedback()
    assert report.failed == 1 and report.tampered, report.feedback()
    assert "came twice or out of order" in report.feedback()


def test_pytest_plugins_in_a_test_file_are_refused(tmp_path: Path) -> None:
    plug = ("import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")
    tests = "pytest_plugins = ['test_plug']\nfrom calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"
    ws = workspace(tmp_path / "ws", {**WRONG, "test_calc.py": tests, "test_plug.py": plug})
    report = run_pytest(ws, limits=QUICK)
    _assert_still_fails(report)
    assert "pytest_plugins` in a test file is refused" in report.feedback()


def test_a_top_level_init_does_not_break_collection(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"__init__.py": "", "calc.py": "def add(a, b):\n    return a + b\n",
                                      "test_calc.py": WRONG["test_calc.py"]})
    report = run_pytest(ws, limits=QUICK)
    assert report.ok and report.passed == 1, report.feedback()


def test_a_module_the_parser_chokes_on_is_a_syntax_error_from_the_sandbox(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", {"big.py": "X = " + "-" * 100_000 + "1\n",
                                      "test_big.py": "def test_a():\n    assert True\n"})
    errors = check_modules(ws)
    assert len(errors) == 1 and errors[0].startswith("big.py: SyntaxError: the parser gave up"), errors
    report = run_pytest(ws, limits=QUICK)
    assert report.import_errors == errors and not report.ok


def test_a_test_file_that_does_not_parse_does_not_stop_the_others(tmp_path: Path) -> None:
    """The user's examples still run when a model-written test file is broken, and the report says which
    tests passed, so the examples are counted by name, not guessed from totals."""
    from crew.answers.feedback import split

    ws = workspace(tmp_path / "ws", {
        "calc.py": "def add(a, b):\n    return a + b\n",
        "test_examples.py": "from calc import add\n\ndef test_example_1():\n    assert add(1, 2) == 3\n",
        "test_calc.py": "from calc import add\n\ndef test_x():\n    assert add(:) == 3\n",
    })
    report = run_pytest(ws, limits=QUICK)
    assert not report.ok and report.passed == 1 and report.errors == 1, report.feedback()
    assert report.passed_ids == ("test_examples.py::test_example_1",)
    sp = split(report, 1)
    assert (sp.examples_passed, sp.model_passed, sp.model_total) == (1, 0, 1)
    # and the same code failing its example counts as failing, even though nothing else passed either
    (ws / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    sp = split(run_pytest(ws, limits=QUICK), 1)
    assert (sp.examples_passed, sp.examples_total) == (0, 1)
