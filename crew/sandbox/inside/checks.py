"""The worker's event writer, and the checks of each produced module before pytest runs: syntax, then import.

Both run in the sandbox, never in the parent: parsing a hostile file can exhaust memory or the stack, and
importing runs the model's code.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

_SKIP_MODULES = frozenset({"setup.py", "__main__.py"})


class Events:
    """JSON lines to the supervisor as they happen, so a run killed half-way still has its first results."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()

    def emit(self, **event: Any) -> None:
        if os.getpid() != self.pid:
            return  # a forked copy of pytest (a test that forked and did not exit) must not report twice
        data = (json.dumps(event) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data):]


def produced_modules(code: Path) -> list[Path]:
    """Non-test .py files the developer produced (tests and setup.py are not imported alone)."""
    found = []
    for path in sorted(code.rglob("*.py")):
        rel = path.relative_to(code)
        name = rel.name
        if name.startswith("test_") or name.endswith("_test.py") or name in _SKIP_MODULES:
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        found.append(rel)
    return found


def check_syntax(code: str, events: Events) -> list[Path]:
    """Precise syntax errors, parsed here (never in the parent) and never executed; the modules that parse."""
    good = []
    for rel in produced_modules(Path(code)):
        text = (Path(code) / rel).read_text(encoding="utf-8", errors="replace")
        error = None
        try:
            ast.parse(text, filename=str(rel))
        except SyntaxError as exc:
            line = (exc.text or "").strip()
            shown = f" — `{line[:120]}`" if line else ""
            error = f"{rel}:{exc.lineno}: SyntaxError: {exc.msg}{shown}"
        except (MemoryError, RecursionError, ValueError) as exc:
            error = (f"{rel}: SyntaxError: the parser gave up on this file ({type(exc).__name__}): "
                     "split deeply nested or very long expressions")
        if error:
            events.emit(e="syntax", module=str(rel), error=error)
        else:
            good.append(rel)
    return good


def _location(exc: BaseException, code: str) -> str:
    """"calc.py:12" for the deepest traceback frame inside the produced code."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(code + "/"):
            where = f"{frame.filename[len(code) + 1 :]}:{frame.lineno}"
    return where


def check_imports(code: str, modules: list[Path], events: Events) -> None:
    argv, sys.argv = sys.argv, ["module"]  # a module parsing argv at import must not see our config path
    for rel in modules:
        dotted = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        if not all(part.isidentifier() for part in dotted.split(".")):
            continue
        events.emit(e="import_start", module=str(rel))
        error = None
        try:
            importlib.import_module(dotted)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt at import are errors too
            where = _location(exc, code) or str(rel)
            error = f"{where}: {type(exc).__name__}: {str(exc)[:300]}"
        events.emit(e="import_done", module=str(rel), error=error)
    sys.argv = argv
