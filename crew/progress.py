"""Live progress on the console while the crew works: which agent, which task, which round."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from crew.state import RunState

_lock = threading.Lock()


@contextlib.contextmanager
def task_progress(state: RunState) -> Iterator[None]:
    """Announce each task as CrewAI starts it, and log it. Handlers are removed afterwards."""
    from crewai.events import TaskStartedEvent, crewai_event_bus

    def started(source: Any, event: Any) -> None:
        task = getattr(event, "task", None) or source
        name = getattr(task, "name", "?")
        agent = getattr(getattr(task, "agent", None), "role", "?")
        with _lock:
            state.progress(f"[cyan]▶ {name}[/] — {str(agent).strip()}")
        state.log.append("task_started", task=name)

    with crewai_event_bus.scoped_handlers():
        crewai_event_bus.on(TaskStartedEvent)(started)
        yield
