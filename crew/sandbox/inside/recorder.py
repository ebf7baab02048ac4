"""The pytest plugin the worker runs with: each result straight from pytest's hooks, one event per line.

`pytest` is imported only inside the hooks: this file loads (and is checked) without it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .checks import Events

_TRACEBACK_CHARS = 1500
# Autoloading every installed pytest plugin costs seconds here (langsmith's imports half of langchain), so
# autoload is off and the plugins that model-written tests plausibly need load when a test mentions them.
_PLUGINS_ON_DEMAND = {"hypothesis": "_hypothesis_pytestplugin", "anyio": "anyio.pytest_plugin"}


class Recorder:
    """A pytest plugin: the results straight from pytest's hooks, one event per line."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def pytest_configure(self, config: Any) -> None:
        # `pytest_plugins = [...]` in a test module would import and register agent-written hooks.
        import pytest

        def refuse(module: Any) -> None:
            if getattr(module, "pytest_plugins", None):
                raise pytest.Collector.CollectError(
                    "`pytest_plugins` in a test file is refused in the sandbox (it would load hooks "
                    "that change how tests are reported): import helpers as plain modules instead")

        config.pluginmanager.consider_module = refuse

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.events.emit(e="collect_error", nodeid=report.nodeid or "(collection)", **_failure(report))

    def pytest_collection_finish(self, session: Any) -> None:
        self.events.emit(e="collected", n=len(session.items), ids=[item.nodeid for item in session.items])

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.events.emit(e="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        event: dict[str, Any] = {"e": "report", "nodeid": report.nodeid, "when": report.when,
                                 "outcome": report.outcome}
        if report.failed:
            event.update(_failure(report))
        self.events.emit(**event)

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        self.events.emit(e="finish", status=int(exitstatus))


def _failure(report: Any) -> dict[str, str]:
    """The one-line crash message and the trimmed traceback of a failed pytest report."""
    text = str(report.longreprtext)
    crash = getattr(report.longrepr, "reprcrash", None)
    message = str(getattr(crash, "message", None) or "")
    if not message:  # collection errors carry a plain-text repr: take its last "E   …" line
        lines = [ln for ln in text.splitlines() if ln.strip()]
        e_lines = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
        message = e_lines[-1] if e_lines else lines[-1] if lines else ""
    tail = text if len(text) <= _TRACEBACK_CHARS else "…\n" + text[-_TRACEBACK_CHARS:]
    return {"message": message[:500], "longrepr": tail}


def plugins_wanted(code: Path) -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in code.rglob("*.py"))
    return [arg for word, plugin in _PLUGINS_ON_DEMAND.items()
            if word in text and importlib.util.find_spec(plugin.split(".")[0]) is not None
            for arg in ("-p", plugin)]
