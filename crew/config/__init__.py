"""Load and validate agents.yaml, tasks.yaml and gpu_layout.yaml into frozen, typed objects.

Every mistake becomes one ConfigError naming the file, the key and the fix; nothing downstream ever sees
a raw dict. Adapters (GPU inventory, planner) read the typed objects only. The parts:

- `types.py`        the typed objects (`ProjectConfig` and what it holds) and the crew's fixed names;
- `yaml_reader.py`  `read_yaml`: a strict SafeLoader (duplicate keys, depth, alias bombs, UTF-8);
- `section.py`      `Section`, the one validator of values: type, range, unknown keys, each with file and key;
- `agents.py`, `tasks.py`, `layout.py`  one loader per file; `project.py` loads a folder and cross-checks.
"""

from crew.config.agents import load_agents
from crew.config.layout import exclusion_entries, gpu_entries, load_layout
from crew.config.project import check_workspace_root, load_project
from crew.config.tasks import KICKOFF_INPUTS, MAX_TEST_TIMEOUT_S, check_placeholders, known_placeholders, load_tasks
from crew.config.types import (
    AGENT_NAMES,
    BACKENDS,
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    MIB,
    TASK_NAMES,
    AgentConfig,
    ApiEndpoint,
    DeclaredExclusion,
    DeclaredGpu,
    LayoutConfig,
    ProjectConfig,
    TaskConfig,
    TasksConfig,
    WorkflowSettings,
)
from crew.config.yaml_reader import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_NODES, read_yaml

__all__ = [
    "AGENT_NAMES", "BACKENDS", "DEFAULT_PRIORITY", "KICKOFF_INPUTS", "MAX_ALIASES", "MAX_DEPTH",
    "MAX_EXPANDED_NODES", "MAX_PRIORITY", "MAX_TEST_TIMEOUT_S", "MIB", "TASK_NAMES", "AgentConfig",
    "ApiEndpoint", "DeclaredExclusion", "DeclaredGpu", "LayoutConfig", "ProjectConfig", "TaskConfig",
    "TasksConfig", "WorkflowSettings", "check_placeholders", "check_workspace_root", "exclusion_entries",
    "gpu_entries", "known_placeholders", "load_agents", "load_layout", "load_project", "load_tasks", "read_yaml",
]
