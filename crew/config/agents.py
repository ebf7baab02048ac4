"""agents.yaml: the crew's four agents, each with its model candidates and CrewAI settings."""

from __future__ import annotations

from pathlib import Path

from crew.config.section import Section, key_name, show
from crew.config.types import AGENT_NAMES, DEFAULT_PRIORITY, DEFAULT_SLOTS, MAX_PRIORITY, MAX_SLOTS, AgentConfig
from crew.config.yaml_reader import read_yaml
from crew.errors import ConfigError

TOOLS = ("auto", "on", "off")  # crew/tools/file_tools.py: gets_tools
_AGENT_KEYS = ("role", "goal", "backstory", "llm", "fallbacks", "num_ctx", "cpu_model", "api", "max_tokens",
               "priority", "verbose", "allow_delegation", "max_iter", "tools", "slots",
               "draft_model")


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
            raise ConfigError(f"unknown agent {show(name)}", where=f"{file}: {key_name(name)}",
                              fix=f"the crew's agents are {', '.join(AGENT_NAMES)}")
        s = Section(file, name, raw, _AGENT_KEYS)
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
            tools=s.text("tools", "auto"),
            slots=s.positive_int("slots", DEFAULT_SLOTS.get(name, 1), low=1, high=MAX_SLOTS),
            draft_model=s.text("draft_model", ""),
        )
        if agents[name].tools not in TOOLS:
            raise ConfigError(f"unknown tools setting {agents[name].tools!r}", where=f"{file}: {name}.tools",
                              fix="use auto (API endpoints only), on or off")
        # Delegation hands an agent CrewAI's delegate tools, whose call format small local models break; the
        # workflow's hand-offs are its task order instead. Said, not silently ignored.
        if s.get("allow_delegation", bool, False):
            raise ConfigError("delegation is not supported", where=f"{file}: {name}.allow_delegation",
                              fix="remove the key or set `allow_delegation: false` (tasks.yaml orders the hand-offs)")
    return agents
