"""The sandbox's inside (crew/sandbox/inside/) needs nothing but the standard library, and runs so.

It is copied into each stage and started with `python -I`; the tests copy it into a temp folder, run it
from there with the working folder elsewhere, and read every import statement of every file.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from crew.sandbox import run_pytest
from crew.sandbox.stage import INSIDE_DIR, INSIDE_PACKAGE, boot_command, copy_inside
from tests.sandbox_helpers import QUICK, workspace

# pytest is what the worker runs, imported only inside functions that run after the sandbox is set up;
# nothing else outside the standard library, anywhere in a file.
_RUN_LATE = frozenset({"pytest"})


def _foreign_imports(source: str, siblings: set[str]) -> list[str]:
    """Each import of `source` that is not the standard library, a sibling file, or pytest in a function."""
    found = []
    tree = ast.parse(source)
    in_function = {id(node) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
                   for node in ast.walk(fn)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.ImportFrom):
            # relative: only one level up (this package), only files that exist beside it
            ok = node.level == 1 and (node.module or "").split(".")[0] in siblings
            names = [] if ok else [f"{'.' * node.level}{node.module or ''}"]
            found += [f"line {node.lineno}: {n}" for n in names]
            continue
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or (top in _RUN_LATE and id(node) in in_function):
                continue
            found.append(f"line {node.lineno}: {name}")
    return found


def test_every_import_of_the_inside_is_the_standard_library() -> None:
    files = sorted(INSIDE_DIR.glob("*.py"))
    siblings = {f.stem for f in files}
    assert {"supervisor", "worker", "checks", "recorder", "rootfs", "kernel"} <= siblings
    foreign = {f.name: bad for f in files if (bad := _foreign_imports(f.read_text(encoding="utf-8"), siblings))}
    assert foreign == {}
    # the scan itself catches what it is for
    assert _foreign_imports("import yaml\nfrom crew.errors import ConfigError\n", siblings) == [
        "line 1: yaml", "line 2: crew.errors"]
    assert _foreign_imports("import pytest\n", siblings) == ["line 1: pytest"]  # at module level: refused
    assert _foreign_imports("def f():\n    import pytest\n", siblings) == []
    assert _foreign_imports("from ..launch import x\nfrom .nowhere import y\n", siblings) == [
        "line 1: ..launch", "line 2: .nowhere"]


_CHECK_A_WORKSPACE = """
import importlib, json, os, sys
sys.path.insert(0, sys.argv[1])
pkg = sys.argv[2]
mods = [importlib.import_module(f"{pkg}.{m}") for m in ("supervisor", "worker", "checks", "recorder", "rootfs",
                                                         "kernel")]
checks = mods[2]
code = sys.argv[3]
read_end, write_end = os.pipe()
events = checks.Events(write_end)
os.chdir(code)
sys.path.append(code)
good = checks.check_syntax(code, events)
checks.check_imports(code, good, events)
os.close(write_end)
lines = os.read(read_end, 1 << 20).decode().splitlines()
print(json.dumps({"events": [json.loads(x) for x in lines], "path": sys.path, "no_site": sys.flags.no_site,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("crew", "pytest", "yaml"))}))
"""


def test_the_inside_runs_from_a_copy_without_site_packages(tmp_path: Path) -> None:
    out = copy_inside(tmp_path / "out")
    code = workspace(tmp_path / "code", {"good.py": "VALUE = 1\n", "bad.py": "def f(:\n",
                                         "loud.py": "raise ValueError('at import')\n"})
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-I", "-S", "-c", _CHECK_A_WORKSPACE, str(out), INSIDE_PACKAGE,
                           str(code)], cwd=elsewhere, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["no_site"] and seen["loaded"] == []
    assert not any("site-packages" in p or p.startswith(str(Path(__file__).parents[1])) for p in seen["path"])
    kinds = [(e["e"], e["module"], bool(e.get("error"))) for e in seen["events"]]
    assert kinds == [("syntax", "bad.py", True), ("import_start", "good.py", False),
                     ("import_done", "good.py", False), ("import_start", "loud.py", False),
                     ("import_done", "loud.py", True)]
    assert seen["events"][-1]["error"] == "loud.py:1: ValueError: at import"


def test_the_boot_command_starts_the_supervisor_from_the_copy(tmp_path: Path) -> None:
    """The command launch.py runs, from a copy, in the plain mode: the worker's events and exit status come
    back on the channel, and the code it imports sees neither the project nor the inside by name."""
    stage = tmp_path / "stage"
    out = copy_inside(stage / "out")
    probe = ("import sys\nLOADED = sorted(m for m in sys.modules if m.split('.')[0] in ('crew', "
             f"{INSIDE_PACKAGE!r}))\nassert LOADED == [], LOADED\n"
             f"assert {str(out)!r} not in sys.path\n")
    code = workspace(stage / "work" / "code", {"probe.py": probe})
    read_end, write_end = os.pipe()
    config = {"task": "imports", "stage": str(stage), "code": str(code), "mount": False, "drop_uid": None,
              "channel_fd": write_end, "cgroup": None, "ini": "", "tmpfs_bytes": 1 << 24, "cpu_s": 30,
              "as_bytes": 2 << 30, "fsize_bytes": 1 << 24, "nproc": 4096, "pytest_args": []}
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    try:
        done = subprocess.run(boot_command(sys.executable, out, out / "config.json"), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, pass_fds=(write_end,), check=False)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as channel:
        events = [json.loads(line) for line in channel.read().splitlines()]
    assert done.returncode == 0, done.stderr
    assert events == [{"e": "import_start", "module": "probe.py"},
                      {"e": "import_done", "module": "probe.py", "error": None},
                      {"e": "worker_exit", "status": 0}], done.stderr


def test_stage_modules_named_like_the_inside_are_the_agents_own(tmp_path: Path) -> None:
    """The inside's package and files leave `sys.modules` before any staged code runs: a module of the
    same name in the workspace is the one the tests import."""
    ours = [INSIDE_PACKAGE, "supervisor", "worker", "checks", "recorder", "kernel"]
    files = {f"{name}.py": f"WHO = {name!r}\n" for name in ours}
    files["test_names.py"] = "".join(f"import {n}\n" for n in ours) + "\n\ndef test_names():\n" + "".join(
        f"    assert {n}.WHO == {n!r}\n" for n in ours)
    report = run_pytest(workspace(tmp_path / "ws", files), limits=QUICK)
    assert report.ok and report.passed == 1, report.feedback()
