"""Agents side by side: the tester's answer is asked while the developer implements.

write_tests depends only on specify (tasks.yaml `context: [specify]`) and the tester never sees the code, yet
CrewAI's sequential process asks it only after implement. So when specify is done, the tester's request is
built exactly as CrewAI will build it — the tester Agent assembles its prompt against a capturing copy of its
model, which records the messages and sends nothing (ServedLLM.capturing) — and sent to the tester's server
in a thread of its own. When CrewAI runs write_tests, the tester's model finds that request already asked
with the very same messages and returns its answer (ServedLLM.ask_ahead); any other request (a retry, a
prompt that differs) is asked as usual, so the result never depends on the head start. Both requests are
in the run log (`llm_call`, with start and end), so the overlap can be seen.

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


def ask_tester_ahead(state: Any, agent: Any, task: Any, context: str) -> threading.Thread | None:
    """Build the tester's write_tests request as CrewAI would and send it now, in a thread (returned, for
    the caller to join); None when it cannot be."""
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
        state.log.record(AskedAhead(task=str(getattr(task, "name", "")), agent="tester", sent=False,
                                    why=f"{type(exc).__name__}: {exc}"[:200]))
        return None
    if not box or not isinstance(box[0], list):
        return None
    threads: list[threading.Thread] = []
    llm.ask_ahead(box[0], run=lambda request: threads.append(_start(request)))
    state.log.record(AskedAhead(task=str(getattr(task, "name", "")), agent="tester", sent=True))
    return threads[0] if threads else None


def _start(request: Callable[[], str]) -> threading.Thread:
    def body() -> None:
        with contextlib.suppress(BaseException):  # its future holds the error; CrewAI asks again
            request()

    thread = threading.Thread(target=body, name="tester-ahead", daemon=True)
    thread.start()
    return thread
