"""Shared fixtures. Nothing here touches the network or the user's home."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from crew.offline import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[1]
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A copy of the project's three YAML files in a temp folder, to edit freely."""
    for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path
