"""Servers that outlive one run (`plan-gpus up`, `keep_warm`): recorded in .localcrew/servers.json.

The record is what makes reuse safe: a listening server is reused only when its recorded pinning (env),
port and models equal the plan's; a server with another pinning is never reused silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crew.errors import ServingError
from crew.serving.process import healthy
from crew.serving.spec import LaunchSpec

STATE_DIR = ".localcrew"


@dataclass(frozen=True)
class Record:
    server_id: str
    pid: int
    port: int
    env: dict[str, str]
    models: list[str]
    log: str
    started: float
    simulated: bool = False

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        with contextlib.suppress(OSError):
            if Path(f"/proc/{self.pid}/stat").read_text().split()[2] == "Z":
                return False
        return True


def state_path(root: Path) -> Path:
    return root / STATE_DIR / "servers.json"


def load(root: Path) -> dict[str, Record]:
    path = state_path(root)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {k: Record(**v) for k, v in data.items()}
    except (ValueError, TypeError) as exc:
        raise ServingError(f"unreadable server registry ({exc})", where=str(path),
                           fix="stop the servers by hand and delete the file") from None


def save(root: Path, records: dict[str, Record]) -> None:
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: r.__dict__ for k, r in records.items()}, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a registry


def record_of(spec: LaunchSpec, pid: int, log: Path) -> Record:
    return Record(server_id=spec.server_id, pid=pid, port=spec.port, env=dict(spec.env),
                  models=[m.alias for m in spec.models], log=str(log), started=time.time(),
                  simulated=spec.simulated)


def reusable(spec: LaunchSpec, rec: Record | None) -> bool:
    """True: the recorded server is this spec, alive and healthy. Raises if it runs with another pinning."""
    if rec is None or not rec.alive():
        return False
    same_pin = rec.env.get("CUDA_VISIBLE_DEVICES") == spec.env.get("CUDA_VISIBLE_DEVICES")
    same = same_pin and rec.models == [m.alias for m in spec.models] and rec.port == spec.port
    if not same:
        raise ServingError(f"a server {spec.server_id} is already running (pid {rec.pid}, port {rec.port}) with "
                           f"other pinning or models ({rec.env.get('CUDA_VISIBLE_DEVICES')!r}, {rec.models})",
                           where=f"{STATE_DIR}/servers.json", fix="stop it with `plan-gpus down`, then start again")
    return healthy(spec)


def stop_record(rec: Record, grace_s: float = 5.0) -> bool:
    """Stop a recorded server's process group. True if it was running."""
    if not rec.alive():
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and rec.alive():
        time.sleep(0.1)
    if rec.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.pid, signal.SIGKILL)
    return True


def as_json(records: dict[str, Record]) -> list[dict[str, Any]]:
    return [{**r.__dict__, "alive": r.alive()} for r in records.values()]


def partition(specs: list[LaunchSpec], records: dict[str, Record]) -> tuple[list[LaunchSpec], list[LaunchSpec]]:
    """(reused, to_start): a recorded server that is this spec and healthy is reused at its recorded port."""
    from crew.serving.spec import with_port

    reused, to_start = [], []
    for spec in specs:
        rec = records.get(spec.server_id)
        candidate = with_port(spec, rec.port) if rec is not None else spec
        if reusable(candidate, rec):
            reused.append(candidate)
        else:
            to_start.append(spec)
    return reused, to_start
