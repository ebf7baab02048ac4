"""What every walkthrough notebook shares: the cell constructors and the first code cell."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell

md, code = new_markdown_cell, new_code_cell

# The notebooks run from notebooks/ (Jupyter's default, and nbclient's in make_notebooks.py and the tests).
# The folder is printed relative to that, so a committed output does not carry one machine's path.
SETUP = """import os
import pathlib

from crew.offline import go_offline

go_offline()  # telemetry, tracing and litellm's price-map download off
ROOT = pathlib.Path.cwd()
while not (ROOT / "agents.yaml").exists():  # the notebooks run from notebooks/; the project is above
    ROOT = ROOT.parent
print("the project:", os.path.relpath(ROOT))"""
