"""Live progress on the console while the crew works: which agent, which task, tokens so far, time taken.

On a terminal a spinner shows the agent writing and its tokens so far (each streamed token moves it); with
`--verbose` the streamed text itself is shown. Every task's elapsed time is printed when it ends, and every
answer's size and time, so a log of a non-interactive run (CI, a pipe) tells the same story without the
spinner.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from crew.journal.records import TaskStarted
from crew.run.state import RunState

_lock = threading.Lock()


def _animates(console: Any) -> bool:
    """A spinner only on a real terminal: FORCE_COLOR (set by Jupyter kernels and many CI systems) makes rich
    treat a pipe as a terminal, and every frame then lands in the log or the notebook as a line of its own."""
    if console is None or not console.is_terminal:
        return False
    try:
        return bool(console.file.isatty())
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


class _Spinner:
    """The one-line status; a no-op when the console is not a terminal or there is no console."""

    def __init__(self, console: Any, verbose: bool) -> None:
        self.console = console
        self.verbose = verbose
        self.status = console.status("") if not verbose and _animates(console) else None
        self.call_started = time.monotonic()

    def __enter__(self) -> _Spinner:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def token(self, agent: str, n: int) -> None:
        if n == 1:
            self.call_started = time.monotonic()
        if self.status is not None:
            took = time.monotonic() - self.call_started
            self.status.update(f"[dim]{agent} writing … {n} tokens, {took:.0f} s[/]")

    def chunk(self, text: str) -> None:
        if self.verbose and self.console is not None:
            self.console.out(text, end="", highlight=False)


@contextlib.contextmanager
def task_progress(state: RunState, llms: Mapping[str, Any] | None = None, *,
                  verbose: bool = False) -> Iterator[None]:
    """Announce each task as CrewAI starts it and its time when it ends, and log both."""
    from crewai.events import TaskCompletedEvent, TaskStartedEvent, crewai_event_bus

    started_at: dict[str, float] = {}
    spinner = _Spinner(getattr(state.progress, "console", None), verbose)

    def started(source: Any, event: Any) -> None:
        task = getattr(event, "task", None) or source
        name = getattr(task, "name", "?")
        agent = getattr(getattr(task, "agent", None), "role", "?")
        started_at[name] = time.monotonic()
        with _lock:
            state.progress(f"[cyan]▶ {name}[/] — {str(agent).strip()}")
        state.log.record(TaskStarted(task=name))

    def completed(source: Any, event: Any) -> None:
        task = getattr(event, "task", None) or source
        name = getattr(task, "name", "?")
        if name in started_at:
            with _lock:
                state.progress(f"[dim]  {name} took {time.monotonic() - started_at.pop(name):.0f} s[/]")

    def answered(agent: str, _url: str, _model: str, seconds: float, llm: Any) -> None:
        tokens = getattr(llm, "last_completion_tokens", 0)
        cut = getattr(llm, "last_cut", "")
        with _lock:
            if cut:
                state.progress(f"[yellow]  {agent}'s answer stopped after {tokens} tokens ({seconds:.1f} s): {cut}; "
                               "what came before is kept[/]")
            else:
                state.progress(f"[dim]  {agent} answered: {tokens} tokens in {seconds:.1f} s[/]")

    for llm in (llms or {}).values():
        if hasattr(llm, "on_token"):
            llm.on_token(spinner.token)
            llm.on_chunk(spinner.chunk)
            llm.also_on_answer(lambda a, u, m, s, llm=llm: answered(a, u, m, s, llm))
    with crewai_event_bus.scoped_handlers(), spinner:
        crewai_event_bus.on(TaskStartedEvent)(started)
        crewai_event_bus.on(TaskCompletedEvent)(completed)
        yield
