"""tasks.yaml: the workflow's six tasks, its settings, and the `{placeholders}` their texts may use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crew.config.section import Section, key_name, show
from crew.config.types import TASK_NAMES, AgentConfig, TaskConfig, TasksConfig, WorkflowSettings
from crew.config.yaml_reader import read_yaml
from crew.errors import ConfigError

_TASK_KEYS = ("agent", "description", "expected_output", "context", "max_tokens", "stop")
_WORKFLOW_KEYS = ("max_fix_rounds", "test_timeout_s", "workspace_root", "implement_rounds", "seed", "temperature",
                  "second_opinions", "consensus_samples", "consensus_tiebreak", "samples_at_once", "assumed_examples",
                  "class_by_method", "samples_ahead", "lean_samples")
MAX_TEST_TIMEOUT_S = 86_400  # a day: a limit beyond is no limit, and `.inf` crashed the first pytest run


def load_tasks(path: Path, agents: Mapping[str, AgentConfig]) -> TasksConfig:
    data = read_yaml(path)
    file = path.name
    inputs_raw = data.pop("inputs", {}) or {}
    if not isinstance(inputs_raw, dict) or not all(isinstance(v, str) for v in inputs_raw.values()):
        raise ConfigError("expected a mapping of input names to text", where=f"{file}: inputs",
                          fix="write `inputs:` with `project_task: >` and its text below")
    w = Section(file, "workflow", data.pop("workflow", {}) or {}, _WORKFLOW_KEYS)
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
        consensus_samples=w.positive_int("consensus_samples", 0, low=0, high=10),
        consensus_tiebreak=w.positive_int("consensus_tiebreak", 0, low=0, high=10),
        samples_at_once=w.positive_int("samples_at_once", 4, low=1, high=16),
        assumed_examples=w.positive_int("assumed_examples", 0, low=0, high=8),
        class_by_method=w.get("class_by_method", bool, False, fix="write `class_by_method: true` or `false`"),
        samples_ahead=w.get("samples_ahead", bool, True, fix="write `samples_ahead: true` or `false`"),
        lean_samples=w.get("lean_samples", bool, True, fix="write `lean_samples: true` or `false`"),
    )
    missing = [n for n in TASK_NAMES if n not in data]
    if missing:
        raise ConfigError("missing task", where=f"{file}: {missing[0]}",
                          fix=f"the workflow needs tasks {', '.join(TASK_NAMES)}")
    tasks = {}
    for name, raw in data.items():
        if name not in TASK_NAMES:
            raise ConfigError(f"unknown task {show(name)}", where=f"{file}: {key_name(name)}",
                              fix=f"the workflow's tasks are {', '.join(TASK_NAMES)}; inputs go under `inputs:`")
        s = Section(file, name, raw, _TASK_KEYS)
        agent = s.text("agent")
        if agent not in agents:
            raise ConfigError(f"no agent named {show(agent)}", where=f"{file}: {name}.agent",
                              fix=f"use one of {', '.join(agents)}")
        context = s.str_list("context")
        for ref in context:
            if ref not in TASK_NAMES or TASK_NAMES.index(ref) >= TASK_NAMES.index(name):
                raise ConfigError(f"context {show(ref)} is not an earlier task", where=f"{file}: {name}.context",
                                  fix=f"name tasks that run before {name!r}")
        limit = s.positive_int("max_tokens", low=16, high=131_072) if s.data.get("max_tokens") is not None else None
        stop = _stop(s, file, name)
        tasks[name] = TaskConfig(name=name, agent=agent, description=s.text("description"),
                                 expected_output=s.text("expected_output"), context=context, max_tokens=limit,
                                 stop=stop)
        known = known_placeholders(inputs_raw)
        for key in ("description", "expected_output"):
            check_placeholders(getattr(tasks[name], key), known, where=f"{file}: {name}.{key}")
    return TasksConfig(tasks=tasks, inputs={k: str(v).strip() for k, v in inputs_raw.items()},
                       workflow=workflow)


# What the run fills in at kickoff (crew/run/workflow.py: run_inputs, and `workspace` in run); tasks.yaml's own
# `inputs:` add to these. CrewAI fills `{name}` in task and agent texts and stops the run on an unknown one.
KICKOFF_INPUTS = ("project_task", "module", "module_name", "workspace", "task_as_prose", "functions", "code_advice",
                  "task_for_developer")
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


def _stop(s: Section, file: str, name: str) -> tuple[str, ...]:
    """A task's stop strings: where the server ends its answer (OpenAI's API takes at most four)."""
    raw = s.data.get("stop")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or len(raw) > 4 or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError("expected one to four non-empty strings", where=f"{file}: {name}.stop",
                          fix='write `stop: ["```"]` (quoted), or leave the key out')
    return tuple(raw)
