"""Load and validate agents.yaml, tasks.yaml and gpu_layout.yaml into frozen, typed objects.

Every mistake becomes one ConfigError naming the file, the key and the fix; nothing downstream ever sees
a raw dict. Adapters (GPU inventory, planner) read the typed objects only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crew.errors import ConfigError

AGENT_NAMES = ("manager", "developer", "tester", "documentation")
TASK_NAMES = ("specify", "implement", "write_tests", "fix_code", "document", "report")
BACKENDS = ("auto", "ollama", "llamacpp")
MIB = 1024**2


@dataclass(frozen=True)
class AgentConfig:
    name: str
    role: str
    goal: str
    backstory: str
    llm: str
    fallbacks: tuple[str, ...] = ()
    num_ctx: int = 8192
    cpu_model: str = "embedded"
    api: str | None = None
    max_tokens: int = 1024     # longest answer the agent may give (a cap on time per call on slow CPUs)

    @property
    def candidates(self) -> tuple[str, ...]:
        """Ranked model candidates for a GPU, best first (rank 0 is `llm`)."""
        return (self.llm, *self.fallbacks)


@dataclass(frozen=True)
class TaskConfig:
    name: str
    agent: str
    description: str
    expected_output: str
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowSettings:
    max_fix_rounds: int = 2
    test_timeout_s: float = 60.0
    workspace_root: str = "runs"
    implement_rounds: int = 3      # attempts at the code against the task's own examples, before the tests
    seed: int = 42                 # sampling seed sent with every model request: a run can be repeated


@dataclass(frozen=True)
class TasksConfig:
    tasks: Mapping[str, TaskConfig]
    inputs: Mapping[str, str]
    workflow: WorkflowSettings


@dataclass(frozen=True)
class ApiEndpoint:
    name: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class LayoutConfig:
    backend: str = "auto"
    gpus: str | tuple[Mapping[str, Any], ...] = "detect"
    reserve_bytes: int = 512 * MIB
    base_port: int = 11500
    simulate: bool = False
    allow_split: bool = False
    exclude: tuple[Mapping[str, Any], ...] = ()
    api_endpoints: Mapping[str, ApiEndpoint] = field(default_factory=dict)
    keep_warm: bool = False
    on_spill: str = "fail"          # a model partly in system RAM: "fail" the start, or "warn" and go on
    kv_type: str = "f16"            # KV cache type on GPUs: f16 | q8_0 | q4_0 (quantized needs flash attention)
    alerts: Mapping[str, float] = field(default_factory=dict)  # vram_pct, temp_c, util_min_pct
    path: str = "gpu_layout.yaml"


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    agents: Mapping[str, AgentConfig]
    tasks: TasksConfig
    layout: LayoutConfig


# ---------------------------------------------------------------------------------------------- reading


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML mapping; malformed YAML names the line."""
    if not path.is_file():
        raise ConfigError("file not found", where=str(path),
                          fix="run from the project folder or pass the right path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"malformed YAML: {problem}", where=f"{path.name}{line}",
                          fix="check indentation and quoting there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of names to settings", where=path.name,
                          fix="start each entry with `name:` at column 0")
    return data


class _Section:
    """Typed access to one mapping, every error naming file and dotted key."""

    def __init__(self, file: str, key: str, data: Any, allowed: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping, got {type(data).__name__}", where=f"{file}: {key}",
                              fix=f"give `{key}` keys such as {', '.join(allowed[:3])}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}", where=self._at(file, key, unknown[0]),
                              fix=f"use one of: {', '.join(allowed)}")
        self.file, self.key, self.data = file, key, data

    @staticmethod
    def _at(file: str, key: str, name: str) -> str:
        return f"{file}: {key}.{name}" if key else f"{file}: {name}"

    def where(self, name: str) -> str:
        return self._at(self.file, self.key, name)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., *, fix: str = "") -> Any:
        if name not in self.data or self.data[name] is None:
            if default is ...:
                raise ConfigError("missing required key", where=self.where(name),
                                  fix=fix or f"add `{name}:`")
            return default
        value = self.data[name]
        # bool is an int in Python; a `true` where a number belongs is a mistake, not a 1.
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            value = None
        if value is None or not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"expected {want}, got {type(self.data[name]).__name__}",
                              where=self.where(name), fix=fix or f"set `{name}` to a {want}")
        return value

    def text(self, name: str, default: Any = ..., *, fix: str = "") -> Any:
        value = self.get(name, str, default, fix=fix)
        return value.strip() if isinstance(value, str) else value

    def positive_int(self, name: str, default: Any = ..., *, low: int = 1, high: int = 10**9) -> int:
        value = int(self.get(name, int, default))
        if not low <= value <= high:
            raise ConfigError(f"{value} is out of range", where=self.where(name),
                              fix=f"use a whole number from {low} to {high}")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, [])
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError("expected a list of names", where=self.where(name),
                              fix=f"write `{name}: [a, b]`")
        return tuple(v.strip() for v in value)


# ---------------------------------------------------------------------------------------------- files

_AGENT_KEYS = ("role", "goal", "backstory", "llm", "fallbacks", "num_ctx", "cpu_model", "api", "max_tokens",
               "verbose", "allow_delegation", "max_iter")


def load_agents(path: Path) -> dict[str, AgentConfig]:
    data = read_yaml(path)
    file = path.name
    missing = [n for n in AGENT_NAMES if n not in data]
    if missing:
        raise ConfigError("missing agent", where=f"{file}: {missing[0]}",
                          fix=f"define all four agents: {', '.join(AGENT_NAMES)}")
    agents = {}
    for name, raw in data.items():
        if name not in AGENT_NAMES:
            raise ConfigError(f"unknown agent {name!r}", where=f"{file}: {name}",
                              fix=f"the crew's agents are {', '.join(AGENT_NAMES)}")
        s = _Section(file, name, raw, _AGENT_KEYS)
        agents[name] = AgentConfig(
            name=name, role=s.text("role"), goal=s.text("goal"), backstory=s.text("backstory"),
            llm=s.text("llm", fix="name a model, e.g. `llm: ollama/qwen2.5-coder:7b` or `llm: embedded`"),
            fallbacks=s.str_list("fallbacks"),
            num_ctx=s.positive_int("num_ctx", 8192, low=512, high=1_048_576),
            cpu_model=s.text("cpu_model", "embedded"), api=s.text("api", None),
            max_tokens=s.positive_int("max_tokens", 1024, low=16, high=131_072),
        )
    return agents


_TASK_KEYS = ("agent", "description", "expected_output", "context")
_WORKFLOW_KEYS = ("max_fix_rounds", "test_timeout_s", "workspace_root", "implement_rounds", "seed")


def load_tasks(path: Path, agents: Mapping[str, AgentConfig]) -> TasksConfig:
    data = read_yaml(path)
    file = path.name
    inputs_raw = data.pop("inputs", {}) or {}
    if not isinstance(inputs_raw, dict) or not all(isinstance(v, str) for v in inputs_raw.values()):
        raise ConfigError("expected a mapping of input names to text", where=f"{file}: inputs",
                          fix="write `inputs:` with `project_task: >` and its text below")
    w = _Section(file, "workflow", data.pop("workflow", {}) or {}, _WORKFLOW_KEYS)
    workflow = WorkflowSettings(
        max_fix_rounds=w.positive_int("max_fix_rounds", 2, low=0, high=20),
        test_timeout_s=float(w.get("test_timeout_s", (int, float), 60.0)),
        workspace_root=w.text("workspace_root", "runs"),
        implement_rounds=w.positive_int("implement_rounds", 3, low=1, high=20),
        seed=w.positive_int("seed", 42, low=0, high=2**31 - 1),
    )
    if workflow.test_timeout_s <= 0:
        raise ConfigError("must be positive", where=f"{file}: workflow.test_timeout_s", fix="e.g. 60")
    missing = [n for n in TASK_NAMES if n not in data]
    if missing:
        raise ConfigError("missing task", where=f"{file}: {missing[0]}",
                          fix=f"the workflow needs tasks {', '.join(TASK_NAMES)}")
    tasks = {}
    for name, raw in data.items():
        if name not in TASK_NAMES:
            raise ConfigError(f"unknown task {name!r}", where=f"{file}: {name}",
                              fix=f"the workflow's tasks are {', '.join(TASK_NAMES)}; inputs go under `inputs:`")
        s = _Section(file, name, raw, _TASK_KEYS)
        agent = s.text("agent")
        if agent not in agents:
            raise ConfigError(f"no agent named {agent!r}", where=f"{file}: {name}.agent",
                              fix=f"use one of {', '.join(agents)}")
        context = s.str_list("context")
        for ref in context:
            if ref not in TASK_NAMES or TASK_NAMES.index(ref) >= TASK_NAMES.index(name):
                raise ConfigError(f"context {ref!r} is not an earlier task", where=f"{file}: {name}.context",
                                  fix=f"name tasks that run before {name!r}")
        tasks[name] = TaskConfig(name=name, agent=agent, description=s.text("description"),
                                 expected_output=s.text("expected_output"), context=context)
    return TasksConfig(tasks=tasks, inputs={k: str(v).strip() for k, v in inputs_raw.items()},
                       workflow=workflow)


_LAYOUT_KEYS = ("backend", "gpus", "reserve_mib", "base_port", "simulate", "allow_split", "exclude",
                "api_endpoints", "keep_warm", "on_spill", "kv_type", "alerts")
_ALERT_KEYS = ("vram_pct", "temp_c", "util_min_pct")
_API_KEYS = ("model", "base_url", "api_key_env")


def load_layout(path: Path) -> LayoutConfig:
    file = path.name
    s = _Section(file, "", read_yaml(path), _LAYOUT_KEYS)
    backend = s.text("backend", "auto")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}", where=f"{file}: backend",
                          fix=f"use one of {', '.join(BACKENDS)}")
    gpus_raw = s.get("gpus", (str, list), "detect")
    if isinstance(gpus_raw, str) and gpus_raw != "detect":
        raise ConfigError(f"{gpus_raw!r} is not a GPU list", where=f"{file}: gpus",
                          fix="write `gpus: detect` or a list of `{name: ..., memory_gib: ...}`")
    if isinstance(gpus_raw, list) and not all(isinstance(g, dict) for g in gpus_raw):
        raise ConfigError("each GPU must be a mapping", where=f"{file}: gpus",
                          fix="write each GPU as `- {name: RTX 3060, memory_gib: 12}`")
    exclude = s.get("exclude", list, [])
    if not all(isinstance(e, dict) for e in exclude):
        raise ConfigError("each rule must be a mapping", where=f"{file}: exclude",
                          fix='write `- {name: "5060", reason: "..."}`')
    endpoints = {}
    for name, raw in (s.get("api_endpoints", dict, {}) or {}).items():
        e = _Section(file, f"api_endpoints.{name}", raw, _API_KEYS)
        endpoints[name] = ApiEndpoint(name=name, model=e.text("model"), base_url=e.text("base_url", None),
                                      api_key_env=e.text("api_key_env", None))
    on_spill = s.text("on_spill", "fail")
    if on_spill not in ("fail", "warn"):
        raise ConfigError(f"unknown value {on_spill!r}", where=f"{file}: on_spill", fix="use fail or warn")
    kv_type = s.text("kv_type", "f16")
    if kv_type not in ("f16", "q8_0", "q4_0"):
        raise ConfigError(f"unknown KV cache type {kv_type!r}", where=f"{file}: kv_type", fix="use f16, q8_0 or q4_0")
    al = _Section(file, "alerts", s.get("alerts", dict, {}) or {}, _ALERT_KEYS)
    alerts = {k: float(al.get(k, (int, float))) for k in _ALERT_KEYS if k in al.data}
    return LayoutConfig(
        on_spill=on_spill,
        kv_type=kv_type,
        alerts=alerts,
        backend=backend,
        gpus=gpus_raw if isinstance(gpus_raw, str) else tuple(gpus_raw),
        reserve_bytes=s.positive_int("reserve_mib", 512, low=0, high=1_000_000) * MIB,
        base_port=s.positive_int("base_port", 11500, low=1024, high=65000),
        simulate=bool(s.get("simulate", bool, False)),
        allow_split=bool(s.get("allow_split", bool, False)),
        exclude=tuple(exclude),
        api_endpoints=endpoints,
        keep_warm=bool(s.get("keep_warm", bool, False)),
        path=str(path),
    )


def load_project(root: Path, *, agents_file: Path | None = None,
                 layout_file: Path | None = None) -> ProjectConfig:
    """Load the three files of a project folder; cross-check agents' API endpoint names."""
    agents = load_agents(agents_file or root / "agents.yaml")
    tasks = load_tasks(root / "tasks.yaml", agents)
    layout = load_layout(layout_file or root / "gpu_layout.yaml")
    for agent in agents.values():
        if agent.api is not None and agent.api not in layout.api_endpoints:
            raise ConfigError(f"API endpoint {agent.api!r} is not declared", where=f"agents.yaml: {agent.name}.api",
                              fix="declare it under `api_endpoints:` in gpu_layout.yaml or remove `api:`")
    return ProjectConfig(root=root, agents=agents, tasks=tasks, layout=layout)
