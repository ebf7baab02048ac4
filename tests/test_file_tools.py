"""The agents' read-only workspace tools: langchain's file IO behind our checks; refusals are readable text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crew.sandbox.workspace import Workspace
from crew.tools.file_tools import workspace_tools


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, object]:
    root = tmp_path / "ws"
    root.mkdir()
    return {t.name: t for t in workspace_tools(Workspace(root, max_file_bytes=1000))}


def _run(tools: dict[str, object], name: str, **kwargs: object) -> str:
    return str(tools[name].run(**kwargs))  # type: ignore[attr-defined]


def test_read_and_list(tools: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "ws" / "pkg").mkdir()
    (tmp_path / "ws" / "pkg" / "calc.py").write_text("X = 1\n")
    assert _run(tools, "read_file", path="pkg/calc.py") == "X = 1\n"
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
    result = _run(tools, "read_file", path=path)
    assert result.startswith("Error: ") and why in result


def test_size_limit_on_read(tools: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "ws" / "grown.txt").write_text("y" * 5000)  # written by someone else
    assert "over the 1000-byte limit" in _run(tools, "read_file", path="grown.txt")


def test_symlinks_that_lead_out_are_refused(tools: dict[str, object], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, tmp_path / "ws" / "link.txt")
    os.symlink(tmp_path, tmp_path / "ws" / "outdir")
    assert "symlink leads out" in _run(tools, "read_file", path="link.txt")
    assert "symlink leads out" in _run(tools, "read_file", path="outdir/secret.txt")
    assert _run(tools, "list_files") == "(the workspace is empty)"  # links are not listed


def test_binary_and_missing_files(tools: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "ws" / "data.txt").write_bytes(b"abc\0def")
    assert "not a plain-text file" in _run(tools, "read_file", path="data.txt")
    assert "no such regular file" in _run(tools, "read_file", path="nothere.py")


def test_tools_describe_themselves_for_the_model(tools: dict[str, object]) -> None:
    assert sorted(tools) == ["list_files", "read_file"]  # no writing: answers' fenced blocks do that
    assert "relative path" in str(tools["read_file"].description)  # type: ignore[attr-defined]


class _Llm:
    def __init__(self, calls: bool, device: str | None = None) -> None:
        self._calls = calls
        if device is not None:
            self.device = device

    def supports_function_calling(self) -> bool:
        return self._calls


@pytest.mark.parametrize(("setting", "llm", "expected"), [
    ("auto", _Llm(True, "api"), True),      # a hosted model: tool calls work
    ("auto", _Llm(True, "gpu 0"), False),   # a local model: small ones break the call format
    ("auto", _Llm(True, "cpu"), False),
    ("on", _Llm(True, "gpu 0"), True),      # the user vouches for the local model
    ("on", _Llm(False, "api"), False),      # never to an LLM that says it cannot call tools
    ("off", _Llm(True, "api"), False),
])
def test_who_gets_tools(setting: str, llm: object, expected: bool) -> None:
    from crew.tools.file_tools import gets_tools

    assert gets_tools(setting, llm) is expected
