"""The agents' workspace tools: langchain's file IO behind our checks; every refusal is readable text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crew.tools.file_tools import workspace_tools
from crew.tools.workspace import Workspace


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, object]:
    root = tmp_path / "ws"
    root.mkdir()
    return {t.name: t for t in workspace_tools(Workspace(root, max_file_bytes=1000))}


def _run(tools: dict[str, object], name: str, **kwargs: object) -> str:
    return str(tools[name].run(**kwargs))  # type: ignore[attr-defined]


def test_write_read_list_round_trip(tools: dict[str, object], tmp_path: Path) -> None:
    assert _run(tools, "write_file", path="pkg/calc.py", content="X = 1\n") == "wrote pkg/calc.py (6 bytes)"
    assert (tmp_path / "ws" / "pkg" / "calc.py").read_text() == "X = 1\n"
    assert _run(tools, "read_file", path="pkg/calc.py") == "X = 1\n"
    _run(tools, "write_file", path="pkg/calc.py", content="X = 2\n")  # replaces, never appends
    assert _run(tools, "read_file", path="pkg/calc.py") == "X = 2\n"
    assert _run(tools, "list_files") == "pkg/calc.py"


@pytest.mark.parametrize(("path", "why"), [
    ("/etc/passwd.txt", "absolute paths are refused"),
    ("../escape.py", "`..` would leave the workspace"),
    ("a/../../escape.py", "`..` would leave the workspace"),
    (".hidden/x.py", "hidden and tool folders"),
    ("run.sh", ".sh is not a plain-text file type"),
    ("image.png", ".png is not a plain-text file type"),
    ("", "empty file name"),
])
def test_refusals_come_back_as_text(tools: dict[str, object], path: str, why: str) -> None:
    for result in (_run(tools, "write_file", path=path, content="x"), _run(tools, "read_file", path=path)):
        assert result.startswith("Error: ") and why in result


def test_size_limit_on_write_and_read(tools: dict[str, object], tmp_path: Path) -> None:
    assert "over the 1000-byte limit" in _run(tools, "write_file", path="big.txt", content="x" * 1001)
    assert not (tmp_path / "ws" / "big.txt").exists()
    (tmp_path / "ws" / "grown.txt").write_text("y" * 5000)  # written by someone else
    assert "over the 1000-byte limit" in _run(tools, "read_file", path="grown.txt")


def test_symlinks_that_lead_out_are_refused(tools: dict[str, object], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, tmp_path / "ws" / "link.txt")
    os.symlink(tmp_path, tmp_path / "ws" / "outdir")
    assert "symlink leads out" in _run(tools, "read_file", path="link.txt")
    assert "symlink leads out" in _run(tools, "write_file", path="link.txt", content="overwrite")
    assert "symlink leads out" in _run(tools, "write_file", path="outdir/new.py", content="x")
    assert secret.read_text() == "do not read" and not (tmp_path / "new.py").exists()
    assert _run(tools, "list_files") == "(the workspace is empty)"  # links are not listed


def test_binary_and_missing_files(tools: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "ws" / "data.txt").write_bytes(b"abc\0def")
    assert "not a plain-text file" in _run(tools, "read_file", path="data.txt")
    assert "no such regular file" in _run(tools, "read_file", path="nothere.py")
    assert "NUL" in _run(tools, "write_file", path="nul.txt", content="a\0b")


def test_tools_describe_themselves_for_the_model(tools: dict[str, object]) -> None:
    assert sorted(tools) == ["list_files", "read_file", "write_file"]
    description = str(tools["write_file"].description)  # type: ignore[attr-defined]
    assert "Relative paths only" in description and ".py" in description
