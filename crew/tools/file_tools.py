"""Read-only workspace tools for agents whose models can call tools (agents.yaml `tools:`), as CrewAI tools.

What an agent may look at while it works: the run's files (read_file, list_files) and the last test round
(last_test_output: pytest's verdict, the failing assertions, compact). Writing stays where the guardrails
are — an answer's fenced blocks — so each agent still writes only its own kind of file.

Reading is langchain-community's FileManagementToolkit (ReadFileTool) confined to the workspace with
`root_dir`. On its own it does not pass our checks (any size, hidden folders, symlinks that lead out), so
every call first passes Workspace's checks; langchain's own root check stays behind them as a second fence.
Listing is ours: langchain's is one folder deep and shows caches and hidden files. A refusal is returned to
the agent as text starting with "Error:", never raised, so a bad call costs the agent a retry, not the run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, Field, PrivateAttr

from crew.errors import WorkspaceError
from crew.sandbox.workspace import Workspace


def _langchain_tools(ws: Workspace) -> dict[str, Any]:
    with warnings.catch_warnings():
        # langchain-community warns on import that it is being sunset; the user sees it in docs/sandbox.md.
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.agent_toolkits import FileManagementToolkit

    toolkit = FileManagementToolkit(root_dir=str(ws.root), selected_tools=["read_file"])
    return {tool.name: tool for tool in toolkit.get_tools()}


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


class _NoArgs(BaseModel):
    pass


class LastTestOutputTool(BaseTool):
    name: str = "last_test_output"
    description: str = "The last test round: pytest's verdict and each failing assertion (expected, actual)."
    args_schema: type[BaseModel] = _NoArgs
    _last: Callable[[], str] = PrivateAttr()

    def bind(self, last: Callable[[], str]) -> LastTestOutputTool:
        self._last = last
        return self

    def _run(self) -> str:
        return self._last()


def workspace_tools(ws: Workspace, last_test_output: Callable[[], str] | None = None) -> list[BaseTool]:
    """read_file and list_files, confined to `ws`; last_test_output when the run can say it."""
    lc = _langchain_tools(ws)
    tools: list[BaseTool] = [ReadFileTool().bind(ws, lc), ListFilesTool().bind(ws, lc)]
    if last_test_output is not None:
        tools.append(LastTestOutputTool().bind(last_test_output))
    return tools


TOOLS_SETTINGS = ("auto", "on", "off")


def gets_tools(setting: str, llm: Any) -> bool:
    """Whether an agent gets the tools: never when its LLM says it cannot call them; `on` always otherwise;
    `auto` only on an API endpoint — small local models break tool-call formats, and a broken call costs a
    retry of the whole answer."""
    if setting == "off" or not llm.supports_function_calling():
        return False
    return setting == "on" or getattr(llm, "device", "api") == "api"
