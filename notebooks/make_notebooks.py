"""Writes the three walkthrough notebooks from their cell lists (nb_01_*.py, nb_02_*.py, nb_03_*.py), and
executes them so they are committed with their outputs: they read on a repository page, and CI still
executes them fresh (tests/test_notebooks.py).

    uv run --no-sync python notebooks/make_notebooks.py --execute            # generate and execute all three
    uv run --no-sync python notebooks/make_notebooks.py --execute 01 03      # only these (a name or its number)
    uv run --no-sync python notebooks/make_notebooks.py                      # write the ones whose cells changed,
                                                                             # without outputs (execute them next)
    uv run --no-sync python notebooks/make_notebooks.py --check              # exit 1 if a committed notebook's
                                                                             # cells differ from the cell lists

`--check` compares cell types and sources only, so a committed notebook keeps its outputs. Executing runs
each notebook from notebooks/ with nbclient, as the tests do, then makes the outputs the same on every
machine and every run where that is reasonable: no timing metadata, the kernel's version left out, the
checkout's path shown relative to it (`/home/me/localcrew/.venv/bin/python` reads `.venv/bin/python`), the
home folder as `~`, a notebook's temporary folder without its random suffix, and one stream output per
stream where the kernel flushed several. What a run really varies (a crew run's id, its timings) stays.

Notebooks only call the package: nothing is defined here that the package should own (the VRAM and
estimate charts are crew/planner/chart.py).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nb_01_plan_gpus import PLAN_GPUS
from nb_02_run_the_crew import RUN_CREW
from nb_03_estimates import ESTIMATES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOTEBOOKS = {
    "01_plan_gpus.ipynb": PLAN_GPUS,
    "02_run_the_crew.ipynb": RUN_CREW,
    "03_estimates_vs_reality.ipynb": ESTIMATES,
}
CELL_TIMEOUT_S = 600  # 02's crew run is one cell: minutes on two CPU cores
_TEMP_FOLDER = re.compile(re.escape(tempfile.gettempdir()) + r"/(localcrew-nb-)[A-Za-z0-9_]+")


def build(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    return nb


def sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def normalise(text: str) -> str:
    """One output text as it would read on any machine (see the module docstring)."""
    text = text.replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")
    text = _TEMP_FOLDER.sub(r"$TMPDIR/\1…", text)
    return text.replace(str(Path.home()), "~")


def _clean(executed: nbformat.NotebookNode, metadata: nbformat.NotebookNode) -> None:
    executed.metadata = metadata  # the kernel's version and paths are not part of the notebook
    for cell in executed.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs: list[nbformat.NotebookNode] = []
        for out in cell.outputs:
            if out.output_type == "stream":
                out.text = normalise(out.text)
                if outputs and outputs[-1].output_type == "stream" and outputs[-1].name == out.name:
                    outputs[-1].text += out.text  # where the kernel happened to flush is not an output
                    continue
            for mime, value in out.get("data", {}).items():
                if isinstance(value, str) and not mime.startswith("image/"):
                    out.data[mime] = normalise(value)
            outputs.append(out)
        cell.outputs = outputs


def execute(name: str) -> nbformat.NotebookNode:
    """The generated notebook, executed from notebooks/ in a python3 kernel of this environment."""
    from nbclient import NotebookClient

    nb = build(NOTEBOOKS[name])
    metadata = nbformat.from_dict(nb.metadata)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    started = time.monotonic()
    client.execute()  # raises CellExecutionError on the first cell that fails: nothing is written then
    print(f"{name}: executed in {time.monotonic() - started:.1f} s")
    _clean(nb, metadata)
    return nb


def _chosen(names: list[str]) -> list[str]:
    if not names:
        return list(NOTEBOOKS)
    chosen = []
    for given in names:
        match = [n for n in NOTEBOOKS if n == given or n.split("_")[0] == given]
        if not match:
            raise SystemExit(f"make_notebooks.py: no notebook {given!r}: use one of {', '.join(NOTEBOOKS)}")
        chosen += match
    return chosen


def _write(path: Path, nb: nbformat.NotebookNode) -> None:
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if "--execute" in argv:
        for name in _chosen([a for a in argv if a != "--execute"]):
            _write(HERE / name, execute(name))
        return 0
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        generated = build(cells)
        if path.is_file() and sources(nbformat.read(path, as_version=4)) == sources(generated):
            continue  # unchanged cells: the committed outputs stay
        stale.append(name)
        if "--check" not in argv:
            _write(path, generated)
            print(f"wrote {name} without outputs: run `uv run --no-sync python notebooks/make_notebooks.py "
                  f"--execute {name}` before committing it")
    if "--check" in argv:
        for name in stale:
            print(f"{name}: its cells differ from make_notebooks.py: run "
                  f"`uv run --no-sync python notebooks/make_notebooks.py --execute {name}`")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
