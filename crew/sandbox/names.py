"""Which file names agents may not write: files that configure pytest or Python, and modules that hide others.

One policy, used twice: by `Workspace` when an agent writes a file (the model gets the message and can
rename), and by the sandbox when it stages a copy (a file that got into the workspace some other way is
left out, and the report says so). Pure: the installed names are read once from site-packages.
"""

from __future__ import annotations

import pkgutil
import sys
import sysconfig
from functools import lru_cache
from pathlib import PurePosixPath

# Files pytest or Python reads on its own: each could change how tests are collected, run or reported.
CONFIG_FILES = frozenset({
    "conftest.py", "pytest.ini", "pytest.toml", "pyproject.toml", "setup.cfg", "tox.ini",
    "sitecustomize.py", "usercustomize.py",
})
# Import names the test run itself depends on.
RUNNER_MODULES = frozenset({"pytest", "_pytest", "pluggy", "py"})
# Nicer suggestions for a few names models reach for; otherwise "<name>_tools.py".
_SUGGEST = {"random": "dice", "string": "text_utils", "math": "calc", "inspect": "inspector",
            "test": "tests", "types": "models", "queue": "job_queue", "logging": "log_setup",
            "calendar": "schedule", "statistics": "stats_utils", "json": "json_utils"}


def _is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


@lru_cache(maxsize=1)
def installed_top_level() -> frozenset[str]:
    """Top-level modules and packages in this interpreter's site-packages (not the project itself)."""
    paths = sorted({p for key in ("purelib", "platlib") if (p := sysconfig.get_paths().get(key))})
    return frozenset(m.name for m in pkgutil.iter_modules(paths))


def refusal(rel: str, installed: frozenset[str] | None = None) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) if an agent may not write `rel`, else None."""
    parts = PurePosixPath(rel).parts
    if not parts:
        return None
    name = parts[-1]
    lower = name.lower()
    if lower in CONFIG_FILES:
        return (f"`{name}` would configure how pytest or Python runs the tests, and the verdict must be "
                "pytest's own", "put fixtures and helpers in the test file itself, or in a plain module "
                "the tests import (e.g. `helpers.py`)")
    if lower.endswith(".pth"):
        return f"`{name}` would run code at interpreter start-up", "write a plain `.py` module instead"
    if _is_test_file(name):
        return None  # pytest imports test files by path: they never hide another module
    top = parts[0] if len(parts) > 1 else PurePosixPath(name).stem if lower.endswith(".py") else None
    if top is None or not top.isidentifier():
        return None
    kind = "folder" if len(parts) > 1 else "file"
    shown = f"{top}/" if kind == "folder" else name
    better = _SUGGEST.get(top, f"{top}_tools")
    example = f"`{better}/`" if kind == "folder" else f"`{better}.py`"
    fix = f"name the {kind} for what it does, e.g. {example}, and import it by that name"
    if top in RUNNER_MODULES:
        return f"`{shown}` would hide `{top}`, which runs the tests", fix
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"`{shown}` would hide Python's standard module `{top}`", fix
    if top in (installed if installed is not None else installed_top_level()):
        return f"`{shown}` would hide the installed package `{top}`", fix
    return None
