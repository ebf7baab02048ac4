"""Agents side by side: a task's first request is asked as soon as the tasks it reads are done.

`ahead_plan` says which: every task whose context is one earlier task other than the one just before it —
write_tests and report after specify (tasks.yaml `context: [specify]`), document after implement. The tester
never sees the code and the report reads only the specification, yet CrewAI's sequential process asks them
after the work in between; the README is written from implement's answer (its context), so it need not wait
for the test rounds. Measured before (2 cores, 0.5B, dev tasks): document 7–14 s and report 5 s at the end of
every run, after every test round.

The request is built exactly as CrewAI will build it — the Agent assembles its prompt against a capturing copy
of its model, which records the messages and sends nothing (ServedLLM.capturing) — and sent to the agent's
server in a thread of its own. When CrewAI reaches the task, the agent's model finds that request already
asked with the very same messages and returns its answer (ServedLLM.ask_ahead); any other request (a retry, a
prompt that differs) is asked as usual, so the result never depends on the head start. Both requests are in
the run log (`llm_call`, with start and end; `asked_ahead`), so the overlap can be seen.

Why not CrewAI's own async tasks (`async_execution=True`): a sync task waits for every pending async one
before it starts (Crew._execute_tasks), so implement and write_tests must both be async; write_tests' guardrail
runs the tests and needs implement's module, so it would have to block on implement; and an exception that
is not an Exception (our RunAborted, a server crash) ends the task's thread without resolving its future, so
the crew would wait forever. Two async tasks on one Agent also share state (crewAI #7332). The head start
keeps CrewAI sequential and its task outputs, `crewai replay -t`, resume and the report as they were.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from crew.journal.records import AskedAhead


def ahead_plan(order: list[str], contexts: dict[str, tuple[str, ...]], skip: frozenset[str] = frozenset()
               ) -> dict[str, list[str]]:
    """Task → the later tasks to ask ahead when it is done: those whose whole context is that one task, unless
    CrewAI runs them right after it anyway (or they are in `skip`: a conditional task's request depends on the
    rounds before it). Pure."""
    plan: dict[str, list[str]] = {}
    for i, name in enumerate(order):
        context = contexts.get(name, ())
        if name in skip or len(context) != 1 or context[0] not in order:
            continue
        source = order.index(context[0])
        if source < i - 1:
            plan.setdefault(context[0], []).append(name)
    return plan


def ask_ahead(state: Any, agent: Any, task: Any, context: str, who: str) -> threading.Thread | None:
    """Build `task`'s first request as CrewAI would and send it now, in a thread (returned, for the caller to
    join); None when it cannot be."""
    from crew.serving.llm import Captured

    llm: Any = getattr(agent, "llm", None)
    if llm is None or not hasattr(llm, "capturing"):  # not a served model (a scripted test model): nothing to gain
        return None
    box: list[Any] = []
    # A shallow copy keeps the crew the agent belongs to (Agent.copy() leaves only its id, which CrewAI's
    # executor refuses) and gets an executor of its own, built around the capturing model.
    twin = agent.model_copy(update={"llm": llm.capturing(box), "agent_executor": None})
    try:
        twin.execute_task(task, context=context)
    except Captured:
        # CrewAI announced the copy's execution; close it, or its event bus warns of an unpaired event
        from crewai.events import crewai_event_bus
        from crewai.events.types.agent_events import AgentExecutionCompletedEvent

        crewai_event_bus.emit(twin, event=AgentExecutionCompletedEvent(agent=twin, task=task, output=""))
    except Exception as exc:  # noqa: BLE001 - a head start that cannot be built is simply not taken
        state.log.record(AskedAhead(task=str(getattr(task, "name", "")), agent=who, sent=False,
                                    why=f"{type(exc).__name__}: {exc}"[:200]))
        return None
    if not box or not isinstance(box[0], list):
        return None
    threads: list[threading.Thread] = []
    llm.ask_ahead(box[0], run=lambda request: threads.append(_start(request, f"{who}-ahead")))
    state.log.record(AskedAhead(task=str(getattr(task, "name", "")), agent=who, sent=True))
    return threads[0] if threads else None


def _start(request: Callable[[], str], name: str) -> threading.Thread:
    def body() -> None:
        with contextlib.suppress(BaseException):  # its future holds the error; CrewAI asks again
            request()

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread
