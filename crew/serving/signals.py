"""Signals during a run: SIGTERM and SIGINT reach the main thread even while it waits in C, and end the
process for sure (used by process.Supervisor.running)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator

INTERRUPT_GRACE_S = 5.0  # after SIGTERM/SIGINT, this long for the run to wind down before the hard stop


@contextlib.contextmanager
def signals_reach_main(hard_stop: Callable[[], None], *, grace_s: float = INTERRUPT_GRACE_S) -> Iterator[None]:
    """SIGTERM and SIGINT interrupt the main thread even while it waits in C, and end the process for sure.

    Python runs signal handlers in the main thread, between bytecodes. A run streaming a model's answer sat
    in `epoll_wait` there, and the kernel may deliver the signal to any thread: SIGTERM then stopped nothing
    for 15 s or more (seen twice). CPython's C handler writes every signal to the wakeup fd, whichever thread
    it lands on; a watcher thread reads it and sends SIGUSR1 to the main thread, whose wait fails with EINTR,
    so the pending handler runs (SIGTERM's raises KeyboardInterrupt; the servers stop on the way out). Should
    the run still be alive after `grace_s`, the watcher stops the servers itself and exits (128 + signal).
    run.jsonl is written per step, so `localcrew resume` continues such a run. Main thread only.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: nothing to wake
        os.close(read_fd)
        os.close(write_fd)
        yield
        return
    previous_usr1 = signal.signal(signal.SIGUSR1, lambda *_: None)  # its only job: EINTR in the main thread
    done = threading.Event()
    main_id = threading.main_thread().ident
    assert main_id is not None

    def watch() -> None:
        while not done.is_set():
            if not select.select([read_fd], [], [], 0.5)[0]:
                continue
            got = {b for b in os.read(read_fd, 64)} & {int(signal.SIGTERM), int(signal.SIGINT)}
            if not got or done.is_set():
                continue
            with contextlib.suppress(ProcessLookupError):
                signal.pthread_kill(main_id, signal.SIGUSR1)
            if done.wait(grace_s):
                return
            hard_stop()
            os._exit(128 + min(got))

    watcher = threading.Thread(target=watch, name="localcrew-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGUSR1, previous_usr1)
        watcher.join(timeout=2)
        os.close(read_fd)
        os.close(write_fd)
