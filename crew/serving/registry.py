"""Servers that outlive one run (`plan-gpus up`, `keep_warm`): recorded in .localcrew/servers.json.

The record is what makes reuse safe: a listening server is reused only when its recorded pinning (env),
port and models equal the plan's; a server with another pinning is never reused silently.

A record also says which process the server is: its pid *and* its start time, boot and command line, read
when it started. Nothing is signalled or reused unless the process under that pid is still that one (a
stale pid now held by an unrelated process is left alone, and its record dropped), and it answers on its
port through a socket it holds itself. The registry never forgets a live server: a save keeps every
recorded server still running that the writer did not know of (another run in the same folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from crew.errors import ConfigError, ServingError
from crew.serving import procinfo
from crew.serving.process import healthy
from crew.serving.spec import LaunchSpec

STATE_DIR = ".localcrew"
_FIX = "delete the file (stop any server it lists by hand first: `kill PID`); `plan-gpus up` writes it again"


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
    start_ticks: int | None = None     # /proc/<pid>/stat field 22 when it started; None: an older record
    boot_id: str = ""
    cmdline: list[str] = field(default_factory=list)
    backend: str = "llamacpp"          # older records have none: they were all llama.cpp
    gpu_indices: list[int] = field(default_factory=list)  # what it is pinned to, typed: ids are never parsed
    planned_bytes: int = 0

    def check(self) -> procinfo.Check:
        """Is the process under `pid` still this server? (start time, boot and command line match)"""
        return procinfo.check(self.pid, self.start_ticks, self.boot_id, tuple(self.cmdline))

    def alive(self) -> bool:
        return self.check().verdict == "ours"

    def same_process(self, other: Record) -> bool:
        return (self.pid, self.start_ticks, self.boot_id) == (other.pid, other.start_ticks, other.boot_id)


def state_path(root: Path) -> Path:
    return root / STATE_DIR / "servers.json"


# field -> (types accepted, words for the message)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "server_id": ((str,), "a string"), "pid": ((int,), "a whole number above 0"),
    "port": ((int,), "a port number (1-65535)"), "env": ((dict,), "a mapping of strings"),
    "models": ((list,), "a list of strings"), "log": ((str,), "a string"),
    "started": ((int, float), "a number (seconds since 1970)"), "simulated": ((bool,), "true or false"),
    "start_ticks": ((int, type(None)), "a whole number or null"), "boot_id": ((str,), "a string"),
    "cmdline": ((list,), "a list of strings"), "backend": ((str,), '"llamacpp" or "ollama"'),
    "gpu_indices": ((list,), "a list of GPU indices"), "planned_bytes": ((int,), "a whole number of bytes"),
}
_REQUIRED = ("server_id", "pid", "port", "env", "models", "log", "started")


def _bad(where: str, what: str) -> ConfigError:
    return ConfigError(what, where=where, fix=_FIX)


def _record(key: str, raw: object, where: str) -> Record:
    if not isinstance(raw, dict):
        raise _bad(f"{where}: {key}", f"the record is {type(raw).__name__}, not a mapping of fields")
    for name in raw:
        if name not in _FIELDS:
            raise _bad(f"{where}: {key}.{name}", "unknown field")
    for name in _REQUIRED:
        if name not in raw:
            raise _bad(f"{where}: {key}.{name}", "missing field")
    for name, value in raw.items():
        types, words = _FIELDS[name]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and name == "pid":
            ok = value > 0
        elif ok and name == "port":
            ok = 0 < value < 65536
        elif ok and name == "env":
            ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        elif ok and name in ("models", "cmdline"):
            ok = all(isinstance(v, str) for v in value)
        elif ok and name == "gpu_indices":
            ok = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1024 for v in value)
        elif ok and name == "backend":
            ok = value in ("llamacpp", "ollama")
        elif ok and name == "planned_bytes":
            ok = value >= 0
        if not ok:
            shown = type(value).__name__ if isinstance(value, (dict, list)) else json.dumps(value)[:40]
            raise _bad(f"{where}: {key}.{name}", f"must be {words}, not {shown}")
    return Record(**raw)


def load(root: Path) -> dict[str, Record]:
    """The recorded servers. A file that is not what `save` writes is one ConfigError (exit 2) naming the
    file, the record and the field — never a traceback."""
    path = state_path(root)
    where = f"{STATE_DIR}/servers.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        text = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise _bad(where, f"unreadable server registry ({text})") from None
    if not isinstance(data, dict):
        raise _bad(where, f"the registry is a {type(data).__name__}, not a mapping of server ids to records")
    return {str(k): _record(str(k), v, where) for k, v in data.items()}


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer at a time per project folder (runs and `plan-gpus up|down` in one folder)."""
    lock = root / STATE_DIR / "servers.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def save(root: Path, records: dict[str, Record]) -> None:
    """Write `records`, plus every live recorded server the writer did not know of.

    Two runs in one folder that both keep a server `gpu0` get both recorded (the second as `gpu0@PORT`),
    so `plan-gpus down` stops both: a server still running is only ever forgotten by stopping it.
    """
    path = state_path(root)
    with _locked(root):
        out = dict(records)
        try:
            on_disk = load(root)
        except ConfigError:
            on_disk = {}  # a broken file is replaced by what we know; load() already told the user
        for key, rec in on_disk.items():
            if any(rec.same_process(r) for r in out.values()) or not rec.alive():
                continue
            out[key if key not in out else f"{key}@{rec.port}"] = rec
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: r.__dict__ for k, r in out.items()}, indent=2), encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves half a registry


def record_of(spec: LaunchSpec, pid: int, log: Path,
              identity: procinfo.ProcessIdentity | None = None) -> Record:
    """The record of a server we started (our child, so `pid` is still it): identity read now if not given."""
    ident = identity or procinfo.identity(pid)
    return Record(server_id=spec.server_id, pid=pid, port=spec.port, env=dict(spec.env),
                  models=[m.alias for m in spec.models], log=str(log), started=time.time(),
                  simulated=spec.simulated, start_ticks=ident.start_ticks if ident else None,
                  boot_id=ident.boot_id if ident else "", cmdline=list(ident.cmdline) if ident else [],
                  backend=spec.backend, gpu_indices=list(spec.gpu_indices), planned_bytes=spec.planned_bytes)


def reusable(spec: LaunchSpec, rec: Record | None) -> bool:
    """True: the recorded server is this spec, alive, healthy and the one answering on its port.
    Raises if it runs with another pinning."""
    if rec is None or not rec.alive():
        return False
    same_pin = rec.env.get("CUDA_VISIBLE_DEVICES") == spec.env.get("CUDA_VISIBLE_DEVICES")
    same = same_pin and rec.models == [m.alias for m in spec.models] and rec.port == spec.port
    if not same:
        raise ServingError(f"a server {spec.server_id} is already running (pid {rec.pid}, port {rec.port}) with "
                           f"other pinning or models ({rec.env.get('CUDA_VISIBLE_DEVICES')!r}, {rec.models})",
                           where=f"{STATE_DIR}/servers.json", fix="stop it with `plan-gpus down`, then start again")
    return healthy(spec) and procinfo.owns_listener(rec.pid, spec.bind_address, spec.port)


def stop_record(rec: Record, grace_s: float = 5.0) -> str:
    """Stop a recorded server's process group — only if the process is still the recorded server.

    Returns what happened, in words: "stopped", "was not running", or why it was left alone.
    """
    verdict = rec.check()
    if verdict.verdict == "gone":
        return "was not running"
    if verdict.verdict != "ours":
        return f"left alone: {verdict.detail}; record dropped"
    # Verified just now: the pid leads the group our server was started in (start_new_session).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and rec.alive():
        time.sleep(0.1)
    if rec.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.pid, signal.SIGKILL)
    return "stopped"


def partition(specs: list[LaunchSpec], records: dict[str, Record], *,
              say: Callable[[str], None] | None = None) -> tuple[list[LaunchSpec], list[LaunchSpec]]:
    """(reused, to_start): a recorded server that is this spec and healthy is reused at its recorded port.

    A record whose pid is now another process is dropped from `records` (and said, when `say` is given).
    """
    for key, stale in list(records.items()):
        verdict = stale.check()
        if verdict.verdict in ("other", "unverifiable"):
            records.pop(key)
            if say is not None:
                say(f"  server {stale.server_id}: {verdict.detail}; left alone, its record dropped")
    reused, to_start = [], []
    for spec in specs:
        rec = records.get(spec.server_id)
        candidate = replace(spec, port=rec.port) if rec is not None else spec
        if reusable(candidate, rec):
            reused.append(candidate)
        else:
            to_start.append(spec)
    return reused, to_start
