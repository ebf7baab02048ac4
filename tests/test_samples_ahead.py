"""The consensus's attempts asked when the crew starts (crew/run/attempts.py `send_ahead`): numbered before any
other attempt, taken by the first request for independent attempts, never asked twice, never left running."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from crew.run import attempts
from crew.run.drafter import LEAN_NOTE
from crew.run.state import RunState
from crew.run.steps import Knobs
from crew.sandbox import SandboxLimits


class Drafter:
    """A developer's model that several threads may ask at once: answers name the attempt's number."""

    concurrent = True

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.asked: list[tuple[int, bool, str, str]] = []
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, k: int, greedy: bool, note: str) -> str:
        with self.lock:
            self.asked.append((k, greedy, note, threading.current_thread().name))
        if self.hold is not None:
            self.hold.wait(10)
        return f"attempt {k}"


def _state(tmp_path: Path, *, consensus: int = 3, ahead: bool = True, lean: bool = True) -> RunState:
    knobs = Knobs(implement_rounds=3, max_fix_rounds=1, second_opinions=2, consensus_samples=consensus,
                  samples_ahead=ahead, lean_samples=lean)
    return RunState(run_dir=tmp_path / "run", module="m.py", knobs=knobs, sandbox_limits=SandboxLimits(),
                    progress=lambda _: None, task="Write m.py with `f(x)` returning x.")


def test_attempts_asked_ahead_are_taken_first_in_order_and_never_asked_again(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.draft = drafter = Drafter()
    attempts.send_ahead(state)
    assert state.tally.drafts_asked == 3  # numbered (their seeds given) before any other attempt
    assert state.log.of("asked_ahead")[0]["task"] == "consensus"
    assert attempts.next_draft(state, greedy=True) == "attempt 4"  # an implement retry: its own request
    assert attempts.next_drafts(state, 2) == ["attempt 1", "attempt 2"]
    assert attempts.next_drafts(state, 3) == ["attempt 3", "attempt 5", "attempt 6"]
    assert sorted(k for k, *_ in drafter.asked) == [1, 2, 3, 4, 5, 6]  # each asked once
    assert all(name.startswith("ahead") for k, _, _, name in drafter.asked if k <= 3)
    # independent attempts are asked for the code alone; the implement retry is the one-shot request itself
    assert all(not greedy and note == LEAN_NOTE for k, greedy, note, _ in drafter.asked if k != 4)
    assert [note for k, _, note, _ in drafter.asked if k == 4] == [""]
    attempts.send_ahead(state)  # once the consensus's attempts were taken, nothing more is sent
    assert state.tally.drafts_asked == 6 and len(drafter.asked) == 6


def test_nothing_is_sent_ahead_when_off_one_at_a_time_or_past_write_tests(tmp_path: Path) -> None:
    state = _state(tmp_path, ahead=False)
    state.draft = Drafter()
    attempts.send_ahead(state)
    assert not state.tally.ahead and state.tally.drafts_asked == 0
    state = _state(tmp_path / "one", ahead=True)

    def one_at_a_time(k: int, greedy: bool, note: str) -> str:  # a server with one slot
        return "x"

    state.draft = one_at_a_time
    attempts.send_ahead(state)
    assert not state.tally.ahead
    state = _state(tmp_path / "resumed")
    state.draft = Drafter()
    state.task_done("specify", None)
    attempts.send_ahead(state)  # after specify: sent
    assert len(state.tally.ahead) == 3
    attempts.settle_ahead(state)
    state = _state(tmp_path / "past-tests")
    state.draft = Drafter()
    state.task_done("write_tests", None)
    attempts.send_ahead(state)  # a resume past write_tests: its consensus is done
    assert not state.tally.ahead


def test_attempts_nothing_took_are_cancelled_or_briefly_waited_for(tmp_path: Path) -> None:
    hold = threading.Event()
    state = _state(tmp_path, consensus=5)
    state.draft = drafter = Drafter(hold)
    attempts.send_ahead(state)  # 5 attempts, at most samples_at_once (4) in flight: the fifth waits
    time.sleep(0.2)
    started = time.monotonic()
    attempts.settle_ahead(state, timeout_s=0.2)
    assert time.monotonic() - started < 5 and not state.tally.ahead
    hold.set()
    time.sleep(0.2)
    assert sorted(k for k, *_ in drafter.asked) == [1, 2, 3, 4]  # the fifth was never sent


def test_without_lean_samples_independent_attempts_are_asked_the_task_alone(tmp_path: Path) -> None:
    state = _state(tmp_path, lean=False)
    state.draft = drafter = Drafter()
    attempts.send_ahead(state)
    assert attempts.next_drafts(state, 4) == ["attempt 1", "attempt 2", "attempt 3", "attempt 4"]
    assert [note for *_, note, _ in drafter.asked] == ["", "", "", ""]
