"""ClassEval (FudanSELab/ClassEval) for the quality benchmark: its tasks, its judging, and the tasks left out.

Only the development split (the 50 even-numbered tasks, ../shared/classeval/ClassEval_dev.json) is read; the
odd-numbered ones are reserved. Each task is a class skeleton (imports, method signatures, docstrings) to
complete; the hidden test is the authors' own: their `import_statement` lines, `from <module> import *` and
their unittest classes, which pytest collects. As the authors judge:

- class level: every test passes;
- method level: the share of the task's `test_classes` none of whose tests fails or errors (each class tests
  one method, the last one the methods together).

A task is skipped, never counted, when a package it imports is not installed here (found by name, nothing
imported), or when its reference solution fails its own test in our sandbox (dates, files, locale). Every
ClassEval run checks the references of the tasks it is about to run before it runs any (about 1 s a task on
2 cores: all 50 in under a minute, so nothing is cached). The reference solution (`solution_code`) is read by
`reference_code` alone, which only that check calls: never into a prompt, never while a model works.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE.parents[1] / "shared" / "classeval" / "ClassEval_dev.json"
ENV_PATH = "LOCALCREW_CLASSEVAL"
HIDDEN_FILE = "test_hidden_judge.py"   # the name bench_quality.judge gives the hidden test
_FIELDS = ("task_id", "class_name", "skeleton", "test", "import_statement", "test_classes")


@dataclass(frozen=True)
class ClassEvalTask:
    id: str                          # ClassEval/<n>
    module: str                      # snake_case of the class name + .py
    prompt: str                      # what the crew and the one shot see
    hidden: str                      # the authors' test file
    test_classes: tuple[str, ...]    # for the method-level share
    packages: tuple[str, ...]        # top-level names the skeleton and the tests import


def data_path(explicit: str | None = None) -> Path:
    """--classeval FILE, else $LOCALCREW_CLASSEVAL, else the shared development split."""
    return Path(explicit or os.environ.get(ENV_PATH) or DEFAULT_PATH)


def load(path: Path) -> list[dict[str, Any]]:
    """The raw records; ValueError (one line) for a file that is missing or not ClassEval's shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err.__class__.__name__}") from None
    except ValueError:
        raise ValueError(f"{path} is not JSON") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a list of ClassEval tasks")
    for i, rec in enumerate(data):
        missing = [k for k in _FIELDS if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise ValueError(f"{path}: task {i} lacks {', '.join(missing)}")
        number = re.fullmatch(r"ClassEval_(\d+)", str(rec["task_id"]))
        if not number:
            raise ValueError(f"{path}: task {i} has the id {rec['task_id']!r}, not ClassEval_<n>")
        if int(number[1]) % 2:  # the odd-numbered split is reserved: never tuned on, so never run by accident
            raise ValueError(f"{path}: {rec['task_id']} is in the reserved (odd-numbered) split")
    return data


def module_name(class_name: str) -> str:
    """AccessGatewayFilter -> access_gateway_filter.py, SQLQueryBuilder -> sql_query_builder.py."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name)
    return snake.lower() + ".py"


def prompt(module: str, class_name: str, skeleton: str) -> str:
    # Written as a user would ask; the skeleton already holds the imports and every method's docstring.
    return (f"Write {module} with the class `{class_name}` below, complete and working: implement every method. "
            "Keep the class name, the method names and their signatures exactly as given.\n\n"
            f"```python\n{skeleton.strip()}\n```")


def hidden_test(module: str, import_statement: Iterable[str], test: str) -> str:
    """The test file as ClassEval's authors build it: their imports, the module's names, their test classes."""
    stem = module.removesuffix(".py")
    return "\n".join([*import_statement, f"from {stem} import *", "", test.strip(), ""])


def task(rec: dict[str, Any]) -> ClassEvalTask:
    module = module_name(str(rec["class_name"]))
    imports = [str(line) for line in rec["import_statement"]]
    return ClassEvalTask(
        id="ClassEval/" + str(rec["task_id"]).split("_")[1], module=module,
        prompt=prompt(module, str(rec["class_name"]), str(rec["skeleton"])),
        hidden=hidden_test(module, imports, str(rec["test"])),
        test_classes=tuple(str(c) for c in rec["test_classes"]),
        packages=imported_packages("\n".join(imports), str(rec["skeleton"]), str(rec["test"])))


def tasks(path: Path) -> list[ClassEvalTask]:
    return [task(rec) for rec in load(path)]


# ------------------------------------------------------------------------------------------ skipped tasks

def imported_packages(*sources: str) -> tuple[str, ...]:
    """Top-level names of every absolute import in the sources; a source that does not parse is read by line."""
    names: list[str] = []
    for src in sources:
        try:
            nodes = list(ast.walk(_parse(src)))
        except SyntaxError:
            nodes = []
            for line in src.splitlines():
                try:
                    nodes += list(ast.walk(_parse(line.strip())))
                except SyntaxError:
                    continue
        for node in nodes:
            if isinstance(node, ast.Import):
                names += [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module.split(".")[0])
    return tuple(dict.fromkeys(names))


def _parse(src: str) -> ast.Module:
    # The authors' tests hold regexes in plain strings ("\d"): Python warns about those escapes, harmlessly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(src)


def missing_packages(t: ClassEvalTask) -> list[str]:
    """What this venv cannot import. find_spec on a top-level name runs no code of the package."""
    own = t.module.removesuffix(".py")
    return [p for p in t.packages if p != own and importlib.util.find_spec(p) is None]


def skipped(all_tasks: list[ClassEvalTask], reference_fails: dict[str, str]) -> list[dict[str, str]]:
    """[{id, why}] for the tasks no run counts: a package missing here, or a reference that fails here."""
    out = []
    for t in all_tasks:
        missing = missing_packages(t)
        if missing:
            out.append({"id": t.id, "why": f"not installed here: {', '.join(missing)}"})
        elif t.id in reference_fails:
            out.append({"id": t.id, "why": f"the reference solution fails here: {reference_fails[t.id]}"})
    return out


def reference_code(path: Path) -> dict[str, str]:
    """Task id -> its reference solution. Only for --check-reference: never shown to a model, never run with one."""
    return {"ClassEval/" + str(r["task_id"]).split("_")[1]: str(r["solution_code"]) for r in load(path)}


# ------------------------------------------------------------------------------------------ method level

def test_methods(hidden: str) -> dict[str, tuple[str, ...]]:
    """Test class -> its test methods, read from the test file (unittest's rule: names starting with test)."""
    try:
        tree = _parse(hidden)
    except SyntaxError:
        return {}
    return {c.name: tuple(f.name for f in c.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                          and f.name.startswith("test"))
            for c in tree.body if isinstance(c, ast.ClassDef)}


def method_share(passed_ids: Iterable[str], hidden: str, test_classes: tuple[str, ...]) -> float:
    """The share of test classes whose every test passed. A test never run (import error, a kill) is not a pass,
    so a class counts only when each of its tests is among those that passed."""
    if not test_classes:
        return 0.0
    passed = set(passed_ids)
    methods = test_methods(hidden)
    good = sum(1 for c in test_classes
               if methods.get(c) and all(f"{HIDDEN_FILE}::{c}::{m}" in passed for m in methods[c]))
    return good / len(test_classes)
