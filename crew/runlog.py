"""The run's log: one JSON object per line, appended and flushed as each step happens.

A crash (even kill -9) loses at most the step in flight; `localcrew resume` and the report read it back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunLog:
    path: Path

    def append(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        line = json.dumps(record, default=str, ensure_ascii=False)
        # O_APPEND + one write per record + fsync: whole lines or nothing, even across processes.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed process: everything before it is intact

    def of(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]
