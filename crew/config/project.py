"""A project folder: its three files loaded and cross-checked, and the folder its runs are made in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from crew.config.agents import load_agents
from crew.config.layout import load_layout
from crew.config.section import show
from crew.config.tasks import check_placeholders, known_placeholders, load_tasks
from crew.config.types import AgentConfig, LayoutConfig, ProjectConfig
from crew.errors import ConfigError


def check_api_endpoints(agents: Mapping[str, AgentConfig], layout: LayoutConfig) -> None:
    """Every agent's `api:` names an endpoint the layout declares (`plan-gpus` checks this too)."""
    for agent in agents.values():
        if agent.api is not None and agent.api not in layout.api_endpoints:
            raise ConfigError(f"API endpoint {show(agent.api)} is not declared",
                              where=f"agents.yaml: {agent.name}.api",
                              fix="declare it under `api_endpoints:` in gpu_layout.yaml or remove `api:`")


def load_project(root: Path, *, agents_file: Path | None = None,
                 layout_file: Path | None = None) -> ProjectConfig:
    """Load the three files of a project folder; cross-check agents' API endpoint names."""
    agents = load_agents(agents_file or root / "agents.yaml")
    tasks = load_tasks(root / "tasks.yaml", agents)
    layout = load_layout(layout_file or root / "gpu_layout.yaml")
    check_api_endpoints(agents, layout)
    for agent in agents.values():
        known = known_placeholders(tasks.inputs)
        for key in ("role", "goal", "backstory"):
            check_placeholders(getattr(agent, key), known, where=f"agents.yaml: {agent.name}.{key}")
    check_workspace_root(root, tasks.workflow.workspace_root)
    return ProjectConfig(root=root, agents=agents, tasks=tasks, layout=layout)


_SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_workspace_root(root: Path, workspace_root: str) -> Path:
    """The folder runs are made in: a directory, or one that can be created, outside the kernel's trees."""
    where, fix = "tasks.yaml: workflow.workspace_root", "name a folder of your own, e.g. `runs`"
    if not workspace_root or "\0" in workspace_root:
        raise ConfigError("empty or not a path", where=where, fix=fix)
    path = Path(os.path.abspath(root / workspace_root))
    # room for runs/<stamp>-<slug>/code/<file> under PATH_MAX (4096), and each part under NAME_MAX (255)
    if len(os.fsencode(path)) > 3500 or any(len(os.fsencode(part)) > 255 for part in path.parts):
        raise ConfigError("the path is too long for the file system", where=where, fix=fix)
    resolved = path.resolve()
    for tree in _SYSTEM_TREES:
        if resolved == tree or tree in resolved.parents or tree in path.parents or path == tree:
            raise ConfigError(f"{workspace_root} is under {tree}, a kernel file system", where=where, fix=fix)
    existing = next((p for p in (resolved, *resolved.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == resolved else f"is inside {existing}, which is a file"
        raise ConfigError(f"{workspace_root} {what}", where=where, fix=fix)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{existing} is not writable", where=where, fix=fix)
    return resolved
