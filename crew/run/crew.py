"""The crew: agents and tasks from the top-level YAML, each agent's LLM bound to its planned server.

One sequential CrewAI crew holds the whole workflow — specify → implement → write_tests → fix_code →
document → report — so `crewai replay -t <task_id>` and `crewai log-tasks-outputs` work on it. The test–fix
loop is CrewAI's own guardrail retry: fix_code's guardrail runs pytest and, while tests fail and rounds are
left, sends the real failure back to the developer. fix_code is a ConditionalTask that is skipped when the
first test run already passed.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from crewai import Agent, Crew, Process, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tasks.conditional_task import ConditionalTask

from crew.config import ProjectConfig
from crew.run.guardrails import guardrails
from crew.run.state import RunState
from crew.run.steps import step

# Our guardrails and callbacks are bound methods (they carry the run's state); CrewAI warns on each that it
# cannot serialise them for its checkpoints, which we do not use (run.jsonl is our checkpoint).
warnings.filterwarnings("ignore", message=".*callbacks cannot be serialized.*", category=UserWarning)


class LocalCrew:
    """Builds the crew for one run. `llms` maps agent name → its bound LLM."""

    def __init__(self, project: ProjectConfig, llms: Mapping[str, BaseLLM], state: RunState, *,
                 verbose: bool = False) -> None:
        self.project = project
        self.llms = llms
        self.state = state
        self.verbose = verbose
        self.ahead: list[threading.Thread] = []  # requests sent before CrewAI reached their task (overlap.py)

    def agents(self) -> dict[str, Agent]:
        from crew.tools.file_tools import gets_tools, workspace_tools

        agents = {}
        for name, cfg in self.project.agents.items():
            llm = self.llms[name]
            tools = workspace_tools(self.state.workspace, self._last_tests) if gets_tools(cfg.tools, llm) else []
            agents[name] = Agent(
                role=cfg.role, goal=cfg.goal, backstory=cfg.backstory, llm=llm, tools=tools,
                allow_delegation=False, verbose=self.verbose or cfg.verbose, max_iter=cfg.max_iter, cache=False,
            )
        return agents

    def _last_tests(self) -> str:
        last = self.state.last
        return self.state.feedback_on(last) if last is not None else "no test round has run yet"

    def tasks(self, agents: Mapping[str, Agent]) -> list[Task]:
        from crew.run.overlap import ahead_plan

        cfg = self.project.tasks.tasks
        state = self.state
        guards = guardrails(state)
        plan = ahead_plan(list(cfg), {name: tuple(tc.context) for name, tc in cfg.items()},
                          skip=frozenset({"fix_code"}))
        built: dict[str, Task] = {}
        for name, tc in cfg.items():
            kwargs: dict[str, Any] = dict(
                name=name, description=tc.description, expected_output=tc.expected_output,
                agent=agents[tc.agent], context=[built[c] for c in tc.context],
            )
            kwargs["callback"] = (self._then_ask_ahead(state, name, built, plan.get(name, []), agents,
                                                       first=not built))
            if name in guards:
                kwargs["guardrail"] = guards[name]
                # Each guardrail decides itself when its attempts are spent; CrewAI must never give up first
                # (it raises when it runs out).
                kwargs["guardrail_max_retries"] = step(state.knobs, name).crewai_retries
            # fix_code runs only when the first test run failed.
            built[name] = (ConditionalTask(condition=state.needs_fix, **kwargs) if name == "fix_code"
                           else Task(**kwargs))
        return list(built.values())

    def _then_ask_ahead(self, state: RunState, name: str, built: dict[str, Task], later: list[str],
                        agents: Mapping[str, Agent], *, first: bool) -> Callable[[Any], None]:
        """A task's callback: log it done, then send the first request of each later task that reads only its
        output (crew/run/overlap.py), where that agent's server can take it beside the work in between. After
        the first task (specify), the consensus's attempts too (attempts.send_ahead): specify runs alone, since
        every other task waits for it."""
        from crew.run.attempts import send_ahead
        from crew.run.overlap import ask_ahead

        cfg = self.project.tasks.tasks

        def done(output: Any) -> None:
            state.task_done(name, output)
            if first:
                send_ahead(state)
            for task_name in later:
                task, who = built.get(task_name), cfg[task_name].agent
                if task is None or not self._overlaps(agents[who]):
                    continue
                thread = ask_ahead(state, agents[who], task, str(getattr(output, "raw", "")), who)
                if thread is not None:
                    self.ahead.append(thread)

        return done

    def _overlaps(self, agent: Agent) -> bool:
        """Does an agent's request gain by going beside the developer's? Yes on a server of its own, or on
        one that decodes several at once; on a shared one-at-a-time server it would only queue ahead."""
        mine, theirs = agent.llm, self.llms.get("developer")
        if theirs is None or getattr(mine, "server_slots", 1) > 1:
            return True
        return str(getattr(mine, "base_url", "")) != str(getattr(theirs, "base_url", ""))

    def crew(self) -> Crew:
        agents = self.agents()
        return Crew(
            name="localcrew", agents=list(agents.values()), tasks=self.tasks(agents),
            process=Process.sequential, verbose=self.verbose, memory=False, cache=False,
        )

