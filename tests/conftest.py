"""Shared fixtures. Nothing here touches the network or the user's home."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest
import yaml

from crew.models.embedded import EMBEDDED_TINY_REF
from crew.offline import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[1]
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)
# Plans and servers must not depend on whether set-up built llama-server: the suite serves with
# llama-cpp-python's server unless a test asks for llama-server itself (tests/test_llama_server.py,
# tests/test_e2e.py's llama-server run).
os.environ.setdefault("LOCALCREW_LLAMA_SERVER", "none")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A copy of the project's three YAML files in a temp folder, to edit freely."""
    for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def use_tiny_model(agents_yaml: Path, **settings: object) -> None:
    """Every agent of a project copy runs on `embedded-tiny` wherever the CPU serves it (its `cpu_model`), with
    `settings` applied to each agent too. For tests of plumbing (servers, pinning, failover, resume), where the
    default model's quality is not what is checked and SmolLM2 is ~5× faster (docs/testing.md)."""
    agents = yaml.safe_load(agents_yaml.read_text())
    for a in agents.values():
        a.update(cpu_model=EMBEDDED_TINY_REF, **settings)
    agents_yaml.write_text(yaml.safe_dump(agents))


@pytest.fixture
def tiny_project_dir(project_dir: Path) -> Path:
    """`project_dir` with every agent's CPU model set to `embedded-tiny`."""
    use_tiny_model(project_dir / "agents.yaml")
    return project_dir


def cli_args(command: str, *positional: str, **options: object) -> argparse.Namespace:
    """A `plan-gpus COMMAND` namespace built by the real parser from keyword options
    (`once=True` → `--once`, `plan="f"` → `--plan f`; False and None leave the option out)."""
    from crew.cli import parse

    argv = [command, *positional]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return parse(argv)[0]
