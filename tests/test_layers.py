"""Layers one way: a package of crew/ imports only packages below it (docs/architecture.md, "Layers").

Every import counts, at module level, under TYPE_CHECKING or inside a function (tests/test_import_cycles.py
reads them with `ast`). The order is written here once and in docs/architecture.md; the two exceptions left
are named with their file and why, and a new one fails this test.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_import_cycles import ROOT, edges

# Lowest first. A package may import those before it; packages on one line import none of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("crew.units", "crew.errors", "crew.offline"),
    ("crew.hardware",),          # GPUs, CPU, the backend on PATH, how a process ended
    ("crew.models",),            # model files, llama.cpp's constants, the build check
    ("crew.config",),            # the three YAML files, typed
    ("crew.monitor",),           # NVML samples, alerts, views
    ("crew.planner",),           # estimate, solve, plan, render, validate the estimate
    ("crew.journal", "crew.sandbox"),  # run.jsonl; the workspace, file-name policy and the pytest sandbox
    ("crew.answers", "crew.tools"),  # what agents' answers become; the agents' read-only file tools
    ("crew.serving",),           # specs, processes, failover, the agents' LLMs
    ("crew.fleet",),             # Ray: servers on other nodes
    ("crew.run",),               # one run: the crew, steps, ledger, report, resume
    ("crew.cli",),               # plan-gpus
    ("crew.main",),              # the entry points crewai's CLI and `localcrew` call
    ("crew.__main__", "crew"),   # `python -m crew`
)

# (importing module, imported package): what still goes upward, and why it is left.
EXCEPTIONS = {
    # The inventory is built from the layout's `gpus:`/`exclude:` and, with `cluster:`, from each node's
    # probe: it would belong above config and fleet, but config's own types are hardware's. Moving
    # inventory.py up is the next step (issue 24's note).
    ("crew.hardware.inventory", "crew.config"),
    ("crew.hardware.inventory", "crew.fleet"),
}


def _rank(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in layer if p != "crew") or module in layer:
            return i
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and docs/architecture.md)")


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def upward(root: Path = ROOT) -> list[str]:
    found = []
    for e in edges(root):
        if e.target == "crew":  # the package itself: every import of crew.x runs crew/__init__.py first
            continue
        src, dst = _rank(e.source), _rank(e.target)
        if dst > src and (e.source, _package(e.target)) not in EXCEPTIONS:
            found.append(f"{e.source} imports {e.target} (line {e.line}, {e.kind}): a lower layer imports a higher")
        if dst == src and _package(e.source) != _package(e.target):
            found.append(f"{e.source} imports {e.target} (line {e.line}): packages of one layer import none of "
                         "each other")
    return found


def test_every_import_goes_down_the_layers() -> None:
    assert upward() == []


def test_the_exceptions_are_still_needed() -> None:
    """An exception whose import is gone is removed from the list, so the list stays the truth."""
    used = {(e.source, _package(e.target)) for e in edges(ROOT)}
    assert used >= EXCEPTIONS, EXCEPTIONS - used


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "crew"
    for sub in ("planner", "serving"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "serving" / "spec.py").write_text("X = 1\n")
    (pkg / "planner" / "render.py").write_text("def f():\n    from crew.serving.spec import X\n    return X\n")
    found = upward(tmp_path)
    assert found and all(f.startswith("crew.planner.render imports crew.serving") for f in found)
