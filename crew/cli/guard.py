"""The one edge every command shares: our errors become one line and their exit code.

`plan-gpus`, `localcrew`, `run_crew` and `replay` all end through `guarded`, so a mistake reads the same
everywhere (`prog: what — where — fix`, exit 2 for bad input, 1 for hardware, 3 for a failed verdict…; the
codes live in crew/errors.py) and a closed pipe (`plan-gpus --json | head`) ends quietly instead of printing a
BrokenPipeError traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from crew.errors import LocalcrewError

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `yes | head` reports for the writer


def guarded(prog: str, body: Callable[[], int], *, on_interrupt: Callable[[], None] | None = None) -> int:
    """Run `body`; turn our errors into one line on stderr and their exit code.

    `on_interrupt` replaces the plain "interrupted" line for commands that must end at once after Ctrl-C
    (a crew run: see crew/main.py); it does not return.
    """
    try:
        code = body()
        sys.stdout.flush()  # a closed pipe shows up here, inside the guard, not at interpreter exit
        return code
    except LocalcrewError as err:
        print(f"{prog}: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    # Python flushes stdout once more at exit; pointed at /dev/null that flush cannot raise again
    # (the recipe of the `signal` module's documentation for SIGPIPE).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout already closed or not a real file (a test's capture)
        pass
