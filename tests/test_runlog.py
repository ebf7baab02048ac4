"""Nothing lost: run.jsonl appends are all-or-nothing, a full disk is one line, a torn tail is skipped."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crew.errors import DiskFullError
from crew.journal import events, records
from crew.journal.log import RunLog
from tests.conftest import ROOT


class FillsUp:
    """An os.write that lets `room` bytes reach the file, then behaves like a full disk."""

    def __init__(self, room: int, *, raise_after: bool = False, fsync_fails: bool = False) -> None:
        self.room, self.raise_after, self.fsync_fails = room, raise_after, fsync_fails

    def write(self, fd: int, data: bytes) -> int:
        n = os.write(fd, data[: self.room])
        self.room -= n
        if n < len(data) and self.raise_after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return n

    def fsync(self, fd: int) -> None:
        if self.fsync_fails:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        os.fsync(fd)


@pytest.mark.parametrize("disk", [FillsUp(10), FillsUp(10, raise_after=True), FillsUp(10**6, fsync_fails=True)],
                         ids=["short write", "ENOSPC mid-write", "EDQUOT on fsync"])
def test_a_full_disk_leaves_no_torn_line_and_is_one_line(tmp_path: Path, disk: FillsUp) -> None:
    path = tmp_path / "run.jsonl"
    RunLog(path).record(records.PlanChosen(source="declared", simulated=False, agents={}))
    before = path.read_bytes()
    with pytest.raises(DiskFullError) as info:
        RunLog(path, io=disk).record(events.TestsRound(round=1, summary="1 passed — ünïcödé"))
    assert path.read_bytes() == before  # all or nothing
    line = info.value.one_line()
    assert "\n" not in line and str(path) in line and f"localcrew resume {tmp_path}" in line
    RunLog(path).record(events.TaskDone(task="implement"))  # space freed: the run goes on
    assert [r["event"] for r in RunLog(path).records()] == ["plan", "task_done"]


def test_a_tail_torn_inside_a_character_is_skipped_and_the_next_record_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    log = RunLog(path)
    log.record(events.TaskDone(task="specify", raw="ok"))
    whole = json.dumps({"ts": 1.0, "event": "task_done", "task": "implement", "raw": "résumé ✓"},
                       ensure_ascii=False).encode()
    cut = whole.index("✓".encode()) + 1  # inside the three bytes of ✓
    with path.open("ab") as f:
        f.write(whole[:cut])  # what a crash mid-write leaves
    assert [r["task"] for r in log.of("task_done")] == ["specify"]  # no UnicodeDecodeError
    log.record(events.TaskDone(task="write_tests", raw="next"))
    assert [r["task"] for r in log.of("task_done")] == ["specify", "write_tests"]


def test_a_record_written_right_after_a_torn_tail_by_older_code_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    torn = b'{"ts": 1.0, "event": "tests", "summary": "caf' + "é".encode()[:1]
    nxt = json.dumps({"ts": 2.0, "event": "task_done", "task": "write_tests"}).encode()
    path.write_bytes(torn + nxt + b"\n")  # the old writer appended the next record onto the torn line
    assert [r["event"] for r in RunLog(path).records()] == ["task_done"]


SCRIPT = textwrap.dedent("""
    import os, subprocess, sys
    sys.path.insert(0, {root!r})
    mnt = {mnt!r}
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], check=True)
    from crew.errors import DiskFullError
    from crew.journal.log import RunLog
    from crew.journal.records import Answer
    log = RunLog(__import__("pathlib").Path(mnt) / "run.jsonl")
    n = 0
    try:
        while True:
            log.record(Answer(task="implement", attempt=n, text="ü" * 3000))
            n += 1
    except DiskFullError as err:
        print(n)
        print(err.one_line())
    print(sum(1 for _ in log.records()))
    with open(log.path, "rb") as f:
        print(f.read().endswith(b"\\n"))
""")


def test_a_real_full_tmpfs(tmp_path: Path) -> None:
    """A 64 KiB tmpfs in a private mount namespace (unprivileged, via a user namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip(reason="no unshare(1) here: a tiny tmpfs cannot be mounted to fill")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(reason=f"user namespaces are not available: {probe.stderr.decode().strip()}")
    done = subprocess.run(["unshare", "-rm", sys.executable, "-c", SCRIPT.format(root=str(ROOT), mnt=str(mnt))],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    written, message, readable, whole = done.stdout.splitlines()
    assert int(written) > 0 and int(readable) == int(written)  # every acknowledged record reads back
    assert "the disk is full" in message and "localcrew resume" in message
    assert whole == "True"  # no torn tail
