"""Load and validate agents.yaml, tasks.yaml and gpu_layout.yaml into frozen, typed objects.

Every mistake becomes one ConfigError naming the file, the key and the fix; nothing downstream ever sees
a raw dict. Adapters (GPU inventory, planner) read the typed objects only.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crew.errors import ConfigError
from crew.planner.vram import GPU_KV_TYPE, KV_TYPES

AGENT_NAMES = ("manager", "developer", "tester", "documentation")
TASK_NAMES = ("specify", "implement", "write_tests", "fix_code", "document", "report")
BACKENDS = ("auto", "ollama", "llamacpp")
# The planner weighs a step down to a lesser model by the agent's priority. The developer writes the code
# every other agent reviews, tests or describes: its model matters most unless agents.yaml says otherwise.
DEFAULT_PRIORITY = {"developer": 2}
MAX_PRIORITY = 100
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
    priority: int = 1          # how much its first-choice model matters to the planner (see DEFAULT_PRIORITY)
    verbose: bool = False      # CrewAI's own step log for this agent (also on for all with --verbose)
    max_iter: int = 3          # CrewAI's cap on an agent's reasoning iterations per task

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
    max_tokens: int | None = None  # longest answer for this task (else the agent's max_tokens)


@dataclass(frozen=True)
class WorkflowSettings:
    max_fix_rounds: int = 2
    test_timeout_s: float = 60.0
    workspace_root: str = "runs"
    implement_rounds: int = 3      # attempts at the code against the task's own examples, before the tests
    seed: int = 42                 # sampling seed sent with every model request: a run can be repeated
    temperature: float = 0.0       # first answers are greedy (one shot's setting); retries are sampled hotter
    second_opinions: int = 2       # independent attempts that judge code vs model tests (0: off)


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
    kv_type: str = GPU_KV_TYPE     # KV cache type on GPUs: f16 | q8_0 | q4_0 (quantized needs flash attention)
    alerts: Mapping[str, float] = field(default_factory=dict)  # vram_pct, temp_c, util_min_pct
    path: str = "gpu_layout.yaml"


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    agents: Mapping[str, AgentConfig]
    tasks: TasksConfig
    layout: LayoutConfig


# ---------------------------------------------------------------------------------------------- reading


# A project file is small and flat: a few dozen keys, a few levels deep. These bounds refuse what no
# project file needs — a document nested thousands deep (the composer recurses), and aliases that expand
# into millions of values (an "alias bomb": cheap to parse, ruinous to walk or print).
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a project file must not hold; carries its own fix."""

    def __init__(self, problem: str, mark: Any, fix: str) -> None:
        super().__init__(None, None, problem, mark)
        self.fix = fix


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, deep nesting and alias bombs, each with the line it is on."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def _mark(self) -> Any:
        return self.peek_event().start_mark  # type: ignore[no-untyped-call]

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} aliases (*name)", self._mark(),
                               "write the values out instead of reusing them with &anchors and *aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", self._mark(),
                               "flatten it: no project setting is nested that deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` may override on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # unhashable: the base class says so, with its mark
                if duplicate:
                    raise _Refused(f"duplicate key {_show(key)}", key_node.start_mark,
                                   "keep one of them: YAML would silently use the last")
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(node: Any, memo: dict[int, int]) -> int:
    """How many values `node` stands for once every alias is followed (aliases share nodes)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once; the constructor handles the cycle
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    memo[id(node)] = total = min(total, MAX_EXPANDED_NODES + 1)
    return total


def _key(name: Any) -> str:
    """A key as it goes into `where`: itself when it is short plain text, else shown like a value."""
    return name if isinstance(name, str) and name.isprintable() and 0 < len(name) <= 40 else _show(name)


def _show(value: Any, limit: int = 40) -> str:
    """A value for an error line: scalars shown (shortened), containers only by their type."""
    if isinstance(value, bool | int | float | str) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return f"a {type(value).__name__}"


def _decode(path: Path) -> str:
    """The file as UTF-8 text; a stray byte names its line and column."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", where=str(path),
                          fix="check the path and its permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}",
                          where=f"{path.name} line {line}",
                          fix="save the file as UTF-8 (retype the character there)") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML mapping; malformed YAML names the line."""
    if not path.is_file():
        raise ConfigError("file not found", where=str(path),
                          fix="run from the project folder or pass the right path")
    text = _decode(path)
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_nodes(node, {}) > MAX_EXPANDED_NODES:
            raise _Refused(f"aliases expand to more than {MAX_EXPANDED_NODES} values", node.start_mark,
                           "write the values out instead of reusing them with &anchors and *aliases")
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or "invalid YAML"
        raise ConfigError(f"malformed YAML: {problem}", where=f"{path.name}{line}",
                          fix=getattr(exc, "fix", "check indentation and quoting there")) from None
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"malformed YAML: character {exc.character!r} is not allowed",
                          where=f"{path.name} line {at}", fix="remove the control character there") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # a value the YAML types reject while building it: 2024-02-30 as a date, a 5000-digit integer
        raise ConfigError(f"malformed YAML: {type(exc).__name__}: {str(exc)[:80]}", where=path.name,
                          fix="quote values that are meant as text") from None
    finally:
        loader.dispose()
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
        unknown = sorted(set(data) - set(allowed), key=str)
        if unknown:
            raise ConfigError(f"unknown key {_show(unknown[0])}", where=self._at(file, key, unknown[0]),
                              fix=f"use one of: {', '.join(allowed)}")
        self.file, self.key, self.data = file, key, data

    @staticmethod
    def _at(file: str, key: str, name: Any) -> str:
        return f"{file}: {key}.{_key(name)}" if key else f"{file}: {_key(name)}"

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
            raise ConfigError(f"{_show(value)} is out of range", where=self.where(name),
                              fix=f"use a whole number from {low} to {high}")
        return value

    def number(self, name: str, default: Any = ..., *, low: float, high: float, fix: str = "",
               low_included: bool = False) -> float:
        """A finite int or float with low < value <= high (`.inf` and `.nan` are YAML floats too)."""
        value = float(self.get(name, (int, float), default))
        above_low = low <= value if low_included else low < value
        if not (math.isfinite(value) and above_low and value <= high):
            raise ConfigError(f"{_show(value)} is out of range", where=self.where(name),
                              fix=fix or f"use a number above {low:g} and at most {high:g}")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, [])
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError("expected a list of names", where=self.where(name),
                              fix=f"write `{name}: [a, b]`")
        return tuple(v.strip() for v in value)


# ---------------------------------------------------------------------------------------------- files

_AGENT_KEYS = ("role", "goal", "backstory", "llm", "fallbacks", "num_ctx", "cpu_model", "api", "max_tokens",
               "priority", "verbose", "allow_delegation", "max_iter")


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
            raise ConfigError(f"unknown agent {_show(name)}", where=f"{file}: {_key(name)}",
                              fix=f"the crew's agents are {', '.join(AGENT_NAMES)}")
        s = _Section(file, name, raw, _AGENT_KEYS)
        agents[name] = AgentConfig(
            name=name, role=s.text("role"), goal=s.text("goal"), backstory=s.text("backstory"),
            llm=s.text("llm", fix="name a model, e.g. `llm: ollama/qwen2.5-coder:7b` or `llm: embedded`"),
            fallbacks=s.str_list("fallbacks"),
            num_ctx=s.positive_int("num_ctx", 8192, low=512, high=1_048_576),
            cpu_model=s.text("cpu_model", "embedded"), api=s.text("api", None),
            max_tokens=s.positive_int("max_tokens", 1024, low=16, high=131_072),
            priority=s.positive_int("priority", DEFAULT_PRIORITY.get(name, 1), low=1, high=MAX_PRIORITY),
            verbose=bool(s.get("verbose", bool, False)),
            max_iter=s.positive_int("max_iter", 3, low=1, high=50),
        )
        # Delegation hands an agent CrewAI's delegate tools, whose call format small local models break; the
        # workflow's hand-offs are its task order instead. Said, not silently ignored.
        if s.get("allow_delegation", bool, False):
            raise ConfigError("delegation is not supported", where=f"{file}: {name}.allow_delegation",
                              fix="remove the key or set `allow_delegation: false` (tasks.yaml orders the hand-offs)")
    return agents


_TASK_KEYS = ("agent", "description", "expected_output", "context", "max_tokens")
_WORKFLOW_KEYS = ("max_fix_rounds", "test_timeout_s", "workspace_root", "implement_rounds", "seed", "temperature",
                  "second_opinions")
MAX_TEST_TIMEOUT_S = 86_400  # a day: a limit beyond is no limit, and `.inf` crashed the first pytest run


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
        test_timeout_s=w.number("test_timeout_s", 60.0, low=0, high=MAX_TEST_TIMEOUT_S,
                                fix=f"give seconds above 0 and at most {MAX_TEST_TIMEOUT_S}, e.g. 60"),
        workspace_root=w.text("workspace_root", "runs"),
        implement_rounds=w.positive_int("implement_rounds", 3, low=1, high=20),
        seed=w.positive_int("seed", 42, low=0, high=2**31 - 1),
        temperature=w.number("temperature", 0.0, low=0, high=2.0, low_included=True,
                             fix="give a sampling temperature from 0 (greedy) to 2, e.g. 0"),
        second_opinions=w.positive_int("second_opinions", 2, low=0, high=10),
    )
    missing = [n for n in TASK_NAMES if n not in data]
    if missing:
        raise ConfigError("missing task", where=f"{file}: {missing[0]}",
                          fix=f"the workflow needs tasks {', '.join(TASK_NAMES)}")
    tasks = {}
    for name, raw in data.items():
        if name not in TASK_NAMES:
            raise ConfigError(f"unknown task {_show(name)}", where=f"{file}: {_key(name)}",
                              fix=f"the workflow's tasks are {', '.join(TASK_NAMES)}; inputs go under `inputs:`")
        s = _Section(file, name, raw, _TASK_KEYS)
        agent = s.text("agent")
        if agent not in agents:
            raise ConfigError(f"no agent named {_show(agent)}", where=f"{file}: {name}.agent",
                              fix=f"use one of {', '.join(agents)}")
        context = s.str_list("context")
        for ref in context:
            if ref not in TASK_NAMES or TASK_NAMES.index(ref) >= TASK_NAMES.index(name):
                raise ConfigError(f"context {_show(ref)} is not an earlier task", where=f"{file}: {name}.context",
                                  fix=f"name tasks that run before {name!r}")
        limit = s.positive_int("max_tokens", low=16, high=131_072) if s.data.get("max_tokens") is not None else None
        tasks[name] = TaskConfig(name=name, agent=agent, description=s.text("description"),
                                 expected_output=s.text("expected_output"), context=context, max_tokens=limit)
        known = known_placeholders(inputs_raw)
        for key in ("description", "expected_output"):
            check_placeholders(getattr(tasks[name], key), known, where=f"{file}: {name}.{key}")
    return TasksConfig(tasks=tasks, inputs={k: str(v).strip() for k, v in inputs_raw.items()},
                       workflow=workflow)


# What the run fills in at kickoff (crew/workflow.py: run_inputs, and `workspace` in run); tasks.yaml's own
# `inputs:` add to these. CrewAI fills `{name}` in task and agent texts and stops the run on an unknown one.
KICKOFF_INPUTS = ("project_task", "module", "module_name", "workspace", "task_as_prose", "functions")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)}")  # crewai.utilities.string_utils, verbatim


def known_placeholders(inputs: Mapping[str, Any]) -> tuple[str, ...]:
    return (*KICKOFF_INPUTS, *(str(k) for k in inputs if str(k) not in KICKOFF_INPUTS))


def check_placeholders(text: str, known: tuple[str, ...], *, where: str) -> None:
    """Refuse a `{name}` CrewAI would fail on at kickoff — after the servers started."""
    for name in _PLACEHOLDER.findall(text):
        if name not in known:
            raise ConfigError(f"unknown placeholder {{{name[:40]}}}", where=where,
                              fix=f"use one of {', '.join('{' + k + '}' for k in known)}, or declare it "
                                  "under `inputs:` in tasks.yaml")


_LAYOUT_KEYS = ("backend", "gpus", "reserve_mib", "base_port", "simulate", "allow_split", "exclude",
                "api_endpoints", "keep_warm", "on_spill", "kv_type", "alerts")
_ALERT_KEYS = ("vram_pct", "temp_c", "util_min_pct")
_ALERT_RANGES = {"vram_pct": (0, 100), "temp_c": (0, 150), "util_min_pct": (-1, 100)}  # (low, high]
_API_KEYS = ("model", "base_url", "api_key_env")


def load_layout(path: Path) -> LayoutConfig:
    file = path.name
    s = _Section(file, "", read_yaml(path), _LAYOUT_KEYS)
    backend = s.text("backend", "auto")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {_show(backend)}", where=f"{file}: backend",
                          fix=f"use one of {', '.join(BACKENDS)}")
    gpus_raw = s.get("gpus", (str, list), "detect")
    if isinstance(gpus_raw, str) and gpus_raw != "detect":
        raise ConfigError(f"{_show(gpus_raw)} is not a GPU list", where=f"{file}: gpus",
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
        e = _Section(file, f"api_endpoints.{_key(name)}", raw, _API_KEYS)
        endpoints[name] = ApiEndpoint(name=name, model=e.text("model"), base_url=e.text("base_url", None),
                                      api_key_env=e.text("api_key_env", None))
    on_spill = s.text("on_spill", "fail")
    if on_spill not in ("fail", "warn"):
        raise ConfigError(f"unknown value {_show(on_spill)}", where=f"{file}: on_spill", fix="use fail or warn")
    kv_type = s.text("kv_type", GPU_KV_TYPE)
    if kv_type not in KV_TYPES:
        raise ConfigError(f"unknown KV cache type {_show(kv_type)}", where=f"{file}: kv_type",
                          fix="use f16, q8_0 or q4_0")
    _check_hardware(gpus_raw, exclude, file)
    al = _Section(file, "alerts", s.get("alerts", dict, {}) or {}, _ALERT_KEYS)
    alerts = {k: al.number(k, low=_ALERT_RANGES[k][0], high=_ALERT_RANGES[k][1]) for k in _ALERT_KEYS
              if k in al.data}
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


def _check_hardware(gpus: str | list[Any], exclude: list[Any], file: str) -> None:
    """Declared GPUs and exclusion rules are checked when the file is read, not when planning starts."""
    from crew.hardware.declared import parse_exclusions, parse_gpus

    parse_exclusions(tuple(exclude), file=file)
    if isinstance(gpus, list):
        parse_gpus(tuple(gpus), file=file)


def load_project(root: Path, *, agents_file: Path | None = None,
                 layout_file: Path | None = None) -> ProjectConfig:
    """Load the three files of a project folder; cross-check agents' API endpoint names."""
    agents = load_agents(agents_file or root / "agents.yaml")
    tasks = load_tasks(root / "tasks.yaml", agents)
    layout = load_layout(layout_file or root / "gpu_layout.yaml")
    for agent in agents.values():
        if agent.api is not None and agent.api not in layout.api_endpoints:
            raise ConfigError(f"API endpoint {_show(agent.api)} is not declared",
                              where=f"agents.yaml: {agent.name}.api",
                              fix="declare it under `api_endpoints:` in gpu_layout.yaml or remove `api:`")
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
