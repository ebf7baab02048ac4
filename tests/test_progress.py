"""The console spinner animates on a real terminal only: forced colour on a pipe (Jupyter, CI) gets none."""

from __future__ import annotations

import io
import os

from rich.console import Console

from crew.run.progress import _animates


def test_a_pipe_with_forced_colour_gets_no_spinner() -> None:
    assert not _animates(Console(file=io.StringIO(), force_terminal=True))
    assert not _animates(Console(file=io.StringIO()))
    assert not _animates(None)


def test_a_real_terminal_gets_the_spinner() -> None:
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert _animates(Console(file=tty))
    finally:
        os.close(master)
        os.close(slave)
