"""The run's log: one JSON object per line, appended and fsynced as each step happens.

Every record is a frozen dataclass (crew/journal/events.py, records.py) written by the one `RunLog.record`.
Appends are all-or-nothing: the whole line goes out in one write on an O_APPEND descriptor, a short write
or a failed fsync is undone (truncated back) and raised as one DiskFullError line, and a record always
starts on a fresh line, so even a tail torn by a crash or a full disk never swallows the next record.
Reading skips what is torn — a cut JSON line or one cut inside a multi-byte character — and keeps the rest.
A crash (even kill -9) loses at most the step in flight; `localcrew resume` and the report read it back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crew.errors import DISK_FULL, WorkflowError, disk_full
from crew.journal.events import START_EVENTS as START_EVENTS  # re-exported: what begins a part of a run
from crew.journal.events import Event, Start, TaskDone, TestsRound, fields_of, parse, typed

# A record as json.dumps writes it begins with these bytes; inside a JSON string a quote is always escaped,
# so they cannot occur in a value: a line torn and then continued by the next record splits here.
_RECORD_START = b'{"ts": '


class LogIO(Protocol):
    """The two system calls an append makes (a seam: tests pass one that fills the disk)."""

    def write(self, fd: int, data: bytes) -> int: ...

    def fsync(self, fd: int) -> None: ...


class OsIO:
    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)


_APPEND = threading.Lock()  # agents' worker threads, the sampler and the crew append to one log


@dataclass(frozen=True)
class RunLog:
    path: Path
    io: LogIO = field(default_factory=OsIO, compare=False, repr=False)

    def record(self, event: Event) -> None:
        """Append one record: `{"ts": …, "event": <kind>, <its fields…>}`, one JSON line, fsynced."""
        self._append({"ts": round(time.time(), 3), "event": event.event, **fields_of(event)})

    def _append(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        with _APPEND:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise self._error(exc) from None
            try:
                self._write_whole(fd, data)
            finally:
                os.close(fd)

    def _write_whole(self, fd: int, data: bytes) -> None:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # the tail was torn (by a crash): this record starts on its own line
        try:
            written = self.io.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write: {written} of {len(data)} bytes")
            self.io.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # undo the part that reached the file: all or nothing
                os.ftruncate(fd, size)
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> Exception:
        if exc.errno in DISK_FULL:
            return disk_full(self.path, run_dir=self.path.parent, detail=exc.strerror or "")
        return WorkflowError(f"cannot write the run log ({exc.strerror or exc})", where=str(self.path),
                             fix=f"check the folder's permissions and disk, then `localcrew resume {self.path.parent}`")

    def records(self) -> Iterator[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in data.split(b"\n"):
            record = _parse(line)
            if record is not None:
                yield record

    def of(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]

    def read(self) -> list[Event]:
        """Every record, typed (crew/journal/events.py): read the file once and hand the list around."""
        return typed(self.records())


def _parse(line: bytes) -> dict[str, Any] | None:
    """One line's record; a torn line is skipped, unless a whole record follows the tear on it."""
    if not line.strip():
        return None
    start = 0
    while start != -1:
        try:
            record = json.loads(line[start:].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            start = line.find(_RECORD_START, start + 1)
            continue
        return record if isinstance(record, dict) else None
    return None


# ------------------------------------------------------------------------------------------ reading a run back

@dataclass(frozen=True)
class Settled:
    """What a run's log says is done, read in order, for resume and replay."""

    finished: list[TaskDone]   # one per task, in task order, no gaps (a skipped task is a stub)
    rounds: list[TestsRound]   # the test rounds of finished tasks, in order
    rerun_rounds: int          # rounds of a task interrupted before its task_done: run again, not counted


def settled(records: Iterable[dict[str, Any] | Event], task_names: tuple[str, ...], *,
            before: str | None = None) -> Settled:
    """Finished tasks and the test rounds that count, from a run's records in the order they were written.

    A test round counts once its task's `task_done` follows it: a task interrupted between the two (a kill,
    Ctrl-C, a full disk) is run again on resume, with its rounds, so they must not count twice. A task that
    finishes again (a replay) replaces its earlier output and rounds, and every later task is unfinished
    again. A task with no `task_done` before a finished one was skipped (fix_code when the tests passed):
    it gets a stub, so the list lines up with the crew's tasks. With `before`, only tasks before it count.
    """
    order = {t: i for i, t in enumerate(task_names)}
    done: dict[str, TaskDone] = {}
    rounds: dict[str, list[TestsRound]] = {}
    pending: dict[str, list[TestsRound]] = {}
    rerun = 0
    for item in records:
        rec = item if isinstance(item, Event) else parse(item)
        if isinstance(rec, Start):
            rerun += sum(len(v) for v in pending.values())
            pending.clear()
        elif isinstance(rec, TestsRound):
            if rec.task in order:
                pending.setdefault(rec.task, []).append(rec)
        elif isinstance(rec, TaskDone) and rec.task in order:
            task = rec.task
            done[task], rounds[task] = rec, pending.pop(task, [])
            for later in task_names[order[task] + 1 :]:
                done.pop(later, None)
                rounds.pop(later, None)
    rerun += sum(len(v) for v in pending.values())
    cut = order.get(before, len(task_names)) if before is not None else len(task_names)
    last = max((order[t] for t in done if order[t] < cut), default=-1)
    finished = [done.get(t) or TaskDone(task=t, skipped=True) for t in task_names[: last + 1]]
    return Settled(finished=finished, rounds=[r for t in task_names[:cut] for r in rounds.get(t, [])],
                   rerun_rounds=rerun)
