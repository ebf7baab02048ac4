"""Workspace file tools for agents whose models can call tools: write, read and list, as CrewAI tools.

The file IO of write and read is langchain-community's FileManagementToolkit (WriteFileTool, ReadFileTool)
confined to the workspace with `root_dir`. On its own it does not pass our checks: it accepts any suffix
and any size, writes into hidden folders, offers an append mode, and follows a symlink that points inside
the root at write time. So every call first passes Workspace's checks (the same ones the fenced-code-block
path uses); langchain's own root check stays behind them as a second fence. Listing is ours: langchain's
is one folder deep and shows caches and hidden files.

A refusal is returned to the agent as text starting with "Error:", never raised, so a bad call costs the
agent a retry, not the run.
"""

from __future__ import annotations

import warnings
from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, Field, PrivateAttr

from crew.errors import WorkspaceError
from crew.tools.workspace import TEXT_SUFFIXES, Workspace

_SUFFIXES = ", ".join(sorted(TEXT_SUFFIXES))


def _langchain_tools(ws: Workspace) -> dict[str, Any]:
    with warnings.catch_warnings():
        # langchain-community warns on import that it is being sunset; the user sees it in docs/sandbox.md.
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.agent_toolkits import FileManagementToolkit

    toolkit = FileManagementToolkit(root_dir=str(ws.root), selected_tools=["read_file", "write_file"])
    return {tool.name: tool for tool in toolkit.get_tools()}


class _WriteArgs(BaseModel):
    path: str = Field(description="file name relative to the workspace, e.g. calc.py or pkg/util.py")
    content: str = Field(description="the complete text of the file (it replaces any previous version)")


class _ReadArgs(BaseModel):
    path: str = Field(description="file name relative to the workspace, as list_files shows it")


class _ListArgs(BaseModel):
    pass


class _WorkspaceTool(BaseTool):
    _ws: Workspace = PrivateAttr()
    _lc: dict[str, Any] = PrivateAttr(default_factory=dict)

    def bind(self, ws: Workspace, lc: dict[str, Any]) -> _WorkspaceTool:
        self._ws, self._lc = ws, lc
        return self


class WriteFileTool(_WorkspaceTool):
    name: str = "write_file"
    description: str = (f"Write a whole text file in the workspace. Relative paths only; allowed types: "
                        f"{_SUFFIXES}.")
    args_schema: type[BaseModel] = _WriteArgs

    def _run(self, path: str, content: str) -> str:
        try:
            self._ws.check_write(path, content)
        except WorkspaceError as err:
            return f"Error: {err.one_line()}"
        result = str(self._lc["write_file"].run({"file_path": path, "text": content, "append": False}))
        if not result.startswith("File written"):
            return result  # langchain's own "Error: …"
        return f"wrote {path} ({len(content.encode())} bytes)"


class ReadFileTool(_WorkspaceTool):
    name: str = "read_file"
    description: str = "Read a text file from the workspace, by its relative path."
    args_schema: type[BaseModel] = _ReadArgs

    def _run(self, path: str) -> str:
        try:
            self._ws.check_read(path)
        except WorkspaceError as err:
            return f"Error: {err.one_line()}"
        text = str(self._lc["read_file"].run({"file_path": path}))
        try:
            return self._ws.check_text(path, text.encode("utf-8", errors="replace"))
        except WorkspaceError as err:
            return f"Error: {err.one_line()}"


class ListFilesTool(_WorkspaceTool):
    name: str = "list_files"
    description: str = "List every file in the workspace, one relative path per line."
    args_schema: type[BaseModel] = _ListArgs

    def _run(self) -> str:
        files = self._ws.list_files()
        return "\n".join(files) if files else "(the workspace is empty)"


def workspace_tools(ws: Workspace) -> list[BaseTool]:
    """write_file, read_file and list_files, all confined to `ws`."""
    lc = _langchain_tools(ws)
    return [WriteFileTool().bind(ws, lc), ReadFileTool().bind(ws, lc), ListFilesTool().bind(ws, lc)]
