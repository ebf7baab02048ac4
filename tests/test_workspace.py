"""Workspace path policy and file IO: what is refused, and that nothing escapes the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crew.errors import WorkspaceError
from crew.sandbox.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "ws").mkdir()
    return Workspace(tmp_path / "ws", max_file_bytes=100)


def test_write_read_list(ws: Workspace) -> None:
    ws.write_text("calc.py", "X = 1\n")
    ws.write_text("pkg/util.py", "Y = 2\n")
    ws.write_text("README.md", "# hi\n")
    assert ws.read_text("pkg/util.py") == "Y = 2\n"
    (ws.root / "__pycache__").mkdir()
    (ws.root / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"\0")
    (ws.root / ".pytest_cache").mkdir()
    (ws.root / ".pytest_cache" / "v.txt").write_text("x")
    assert ws.list_files() == ["README.md", "calc.py", "pkg/util.py"]


@pytest.mark.parametrize(("rel", "why"), [
    ("/abs.py", "absolute"), ("../up.py", "`..`"), ("a/../../up.py", "`..`"), ("a\\b.py", "backslash"),
    (".env.txt", "hidden"), (".git/config.txt", "hidden"), ("__pycache__/x.py", "hidden and tool"),
    ("bin/run.sh", ".sh is not"), ("Makefile", "without suffix"), ("x.pyc", ".pyc is not"),
    ("a\nb.py", "control"), ("x" * 300 + ".py", "short"), ("", "empty"), ("   ", "empty"),
])
def test_refusals_say_why(ws: Workspace, rel: str, why: str) -> None:
    with pytest.raises(WorkspaceError) as err:
        ws.safe_path(rel)
    assert why in str(err.value) and err.value.fix
    assert err.value.exit_code == 2


def test_size_limits(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="over the 100-byte limit"):
        ws.write_text("big.txt", "é" * 51)  # 102 bytes in UTF-8: the limit is bytes, not characters
    (ws.root / "big.txt").write_text("x" * 101)
    with pytest.raises(WorkspaceError, match="over the 100-byte limit"):
        ws.read_text("big.txt")


def test_binary_content_is_refused(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="NUL"):
        ws.write_text("a.txt", "a\0b")
    (ws.root / "b.txt").write_bytes(b"\x00\x01")
    with pytest.raises(WorkspaceError, match="binary"):
        ws.read_text("b.txt")


def test_symlinks(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    os.symlink(outside, ws.root / "out.txt")
    os.symlink(tmp_path, ws.root / "updir")
    with pytest.raises(WorkspaceError, match="symlink leads out"):
        ws.write_text("out.txt", "overwrite")
    with pytest.raises(WorkspaceError, match="symlink leads out"):
        ws.write_text("updir/new.py", "x")
    with pytest.raises(WorkspaceError, match="symlink leads out"):
        ws.read_text("out.txt")
    ws.write_text("real.txt", "inside")
    os.symlink(ws.root / "real.txt", ws.root / "alias.txt")  # points inside, still not written through
    with pytest.raises(WorkspaceError, match="through a symlink"):
        ws.write_text("alias.txt", "x")
    assert outside.read_text() == "keep" and not (tmp_path / "new.py").exists()
    assert ws.list_files() == ["real.txt"]


def test_os_errors_become_workspace_errors(ws: Workspace) -> None:
    ws.write_text("a.py", "x = 1\n")
    with pytest.raises(WorkspaceError, match="cannot write"):
        ws.write_text("a.py/b.py", "x")  # a file where a folder should be
    (ws.root / "d.py").mkdir()
    with pytest.raises(WorkspaceError, match="a folder has that name"):
        ws.write_text("d.py", "x")
    with pytest.raises(WorkspaceError, match="no such regular file"):
        ws.read_text("missing.py")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"ab./\\_-~:", "..", ".py", "/..", "%2e", "\0"]), max_size=20).map("".join))
def test_no_accepted_path_leaves_the_root(rel: str) -> None:
    root = Path("/tmp/localcrew-ws-property").resolve()
    ws = Workspace(root)
    try:
        path = ws.safe_path(rel)
    except WorkspaceError:
        return
    assert root in path.resolve().parents


@pytest.mark.parametrize(("rel", "why"), [
    ("conftest.py", "would configure how pytest"), ("tests/conftest.py", "would configure how pytest"),
    ("pytest.ini", "would configure"), ("pyproject.toml", "would configure"), ("setup.cfg", "would configure"),
    ("tox.ini", "would configure"), ("sub/sitecustomize.py", "would configure"),
    ("usercustomize.py", "would configure"), ("pytest.py", "would hide `pytest`, which runs the tests"),
    ("_pytest/hack.py", "would hide `_pytest`"), ("pluggy.py", "would hide `pluggy`"),
    ("random.py", "would hide Python's standard module `random`"), ("string.py", "standard module `string`"),
    ("inspect.py", "standard module `inspect`"), ("json/__init__.py", "`json/` would hide Python's standard"),
    ("yaml.py", "would hide the installed package `yaml`"),
])
def test_files_that_change_how_tests_run_or_hide_modules_are_refused(ws: Workspace, rel: str, why: str) -> None:
    with pytest.raises(WorkspaceError) as err:
        ws.write_text(rel, "x = 1\n")
    assert why in str(err.value) and err.value.fix
    assert not (ws.root / rel).exists()


def test_the_refusal_says_what_to_do_instead(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError) as err:
        ws.write_text("random.py", "x = 1\n")
    assert err.value.one_line() == (
        "workspace path 'random.py': `random.py` would hide Python's standard module `random` — "
        "fix: name the file for what it does, e.g. `dice.py`, and import it by that name")


@pytest.mark.parametrize("rel", ["calc.py", "test_random.py", "pkg/random.py", "tests/test_json.py",
                                 "random_walk.py", "README.md", "data/config.json"])
def test_ordinary_names_are_accepted(ws: Workspace, rel: str) -> None:
    ws.write_text(rel, "x = 1\n")
    assert (ws.root / rel).read_text() == "x = 1\n"
