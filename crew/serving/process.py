"""Start, health-check and stop model servers (the process adapter over LaunchSpec).

Servers run in their own session (process group) so one signal stops a server and everything it spawned,
and with PR_SET_PDEATHSIG so that even a kill -9 of localcrew takes its servers down: no orphans on any
exit path.

Ports are leased, not probed: `free_port` takes an exclusive flock on a per-port file in a directory all of
this user's localcrew processes share, and the server inherits that lock, so it is held for the server's
whole life (even a kept server's, after localcrew exits). Two runs started at once never pick the same
port. A program that is not localcrew can still take a port between our probe and the server's bind; that
server then fails to bind and exits — and since a server is ready only when the socket listening on its
port is one its own process holds (procinfo.owns_listener), a neighbour answering there is never taken for
it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from crew.errors import ServerCrashError, ServingError
from crew.hardware.cpu import kernel_traps, read_cpuinfo
from crew.hardware.crash import ServerExit, describe
from crew.serving import procinfo
from crew.serving.ports import PortLease, claim_port

# Where callers have always found them (the leases moved to ports.py to keep this file to processes):
from crew.serving.ports import free_port as free_port
from crew.serving.ports import port_is_free as port_is_free
from crew.serving.remote import RemoteLauncher, RemoteServer, is_remote
from crew.serving.signals import signals_reach_main
from crew.serving.spec import LaunchSpec

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class RunningServer:
    spec: LaunchSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    started_s: float
    identity: procinfo.ProcessIdentity | None = None  # read right after exec: what the registry records
    lease: PortLease | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def answers(self) -> bool:
        """Healthy, and the socket listening on its port is this process's own (not a neighbour's)."""
        return (procinfo.owns_listener(self.pid, self.spec.bind_address, self.spec.port)
                and healthy(self.spec, timeout_s=1.0))

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_status(self) -> ServerExit | None:
        """How it ended (return code, log tail, the kernel's trap line), or None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        ex = ServerExit(returncode=code, log_tail=tail(self.log_path, 40))
        return ServerExit(code, ex.log_tail, kernel_traps(self.pid)) if ex.faulted else ex


def server_words(spec: LaunchSpec) -> str:
    """"the llama.cpp server for `embedded`": what a one-line message calls a server."""
    engine = "Ollama server" if spec.backend == "ollama" else "llama.cpp server"
    return f"the {engine} for " + ", ".join(f"`{m.alias}`" for m in spec.models)


def crash_error(spec: LaunchSpec, ex: ServerExit, log_path: Path, *, times: int = 1,
                during: str = "") -> ServerCrashError:
    """The one line for a server that ended: what, how, why, and what to run."""
    what = describe(ex, what=server_words(spec) + (f" {during}" if during else ""), times=times,
                    cpu_flags=read_cpuinfo().flags)
    fix = ("run `bash scripts/setup.sh doctor` (it checks this build against this CPU and rebuilds it), then "
           "`localcrew resume RUN_DIR`" if ex.same_binary_will_fail else
           f"read its log ({log_path}); then `localcrew resume RUN_DIR` continues the run")
    return ServerCrashError(what, where=f"server {spec.server_id} (log {log_path})", fix=fix)


# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process. Agents' LLM calls
# (and so failover restarts) run in short-lived worker threads, so every server is forked from this one
# long-lived thread, which lasts as long as localcrew itself.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="localcrew-spawner")


def start(spec: LaunchSpec, state_dir: Path, *, detach: bool = False) -> RunningServer:
    """Start one server (no waiting). Its log and config live in state_dir.

    detach=True (plan-gpus up, keep_warm) lets the server outlive localcrew; otherwise it dies with it.
    """
    return _SPAWNER.submit(_start, spec, state_dir, detach).result()


def _start(spec: LaunchSpec, state_dir: Path, detach: bool) -> RunningServer:
    state_dir.mkdir(parents=True, exist_ok=True)
    lease = claim_port(spec.port, spec.bind_address)
    if lease is None or lease.fd is None:
        raise ServingError(f"port {spec.port} is already in use (another program listens there, or another "
                           "localcrew run holds it)", where=f"server {spec.server_id}",
                           fix="stop what listens there (plan-gpus down) or change base_port in gpu_layout.yaml")
    if spec.config_json is not None:
        (state_dir / f"{spec.server_id}.json").write_text(spec.config_json, encoding="utf-8")
    log_path = state_dir / spec.log_name
    env = {**os.environ, **spec.env}
    with open(log_path, "ab") as log:
        try:
            # pass_fds: the server inherits the port's lease and holds it for as long as it runs
            proc = subprocess.Popen(spec.argv, cwd=state_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(lease.fd,),
                                    preexec_fn=None if detach else _die_with_parent)
        except FileNotFoundError:
            lease.release()
            raise ServingError(f"cannot run {spec.argv[0]!r}", where=f"server {spec.server_id}",
                               fix="install it, or switch `backend:` in gpu_layout.yaml") from None
    # Popen returns after exec: /proc shows the server's own command line; our unreaped child keeps its pid.
    return RunningServer(spec=spec, process=proc, log_path=log_path, started_s=time.monotonic(),
                         identity=procinfo.identity(proc.pid), lease=lease)


# Our servers are on loopback: never route to them through the user's http_proxy.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url: str, *, payload: dict[str, object] | None = None, timeout_s: float = 5.0) -> object:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(req, timeout=timeout_s) as resp:
        return json.loads(resp.read().decode() or "null")


def healthy(spec: LaunchSpec, timeout_s: float = 2.0) -> bool:
    """The server answers its model list (llama.cpp: /v1/models; Ollama: /api/tags)."""
    path = "/api/tags" if spec.backend == "ollama" else "/v1/models"
    try:
        http_json(spec.base_url + path, timeout_s=timeout_s)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def wait_healthy(server: RunningServer, *, timeout_s: float = 120.0,
                 on_wait: Callable[[float], None] | None = None) -> float:
    """Block until the server answers; return seconds taken. A dead or silent server raises with its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            release(server)
            ex = server.exit_status()
            assert ex is not None
            if ex.faulted:  # a build that cannot run here: one line, not its log
                raise crash_error(server.spec, ex, server.log_path, during="while loading its model")
            raise ServingError(
                f"server exited with code {server.process.returncode} while starting",
                where=f"server {server.spec.server_id} (log {server.log_path})",
                fix=f"read its log; last lines:\n{tail(server.log_path)}")
        if server.answers():  # a neighbour answering on the port does not count
            return time.monotonic() - server.started_s
        if on_wait is not None:
            on_wait(time.monotonic() - server.started_s)
        time.sleep(0.2)
    stop(server)
    raise ServingError(f"server not healthy within {timeout_s:.0f} s",
                       where=f"server {server.spec.server_id} (log {server.log_path})",
                       fix=f"check the model and memory; last lines:\n{tail(server.log_path)}")


def release(server: RunningServer | RemoteServer) -> None:
    """Drop this process's hold on the server's port lease (the server's own hold ends with it)."""
    if isinstance(server, RunningServer) and server.lease is not None:
        server.lease.release()


def stop(server: RunningServer | RemoteServer, *, grace_s: float = 5.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after grace_s (a remote server: its
    actor stops it on its node).

    Safe by construction: the server is our unreaped child (poll() is None), so its pid — which leads the
    group start_new_session made — cannot have been handed to another process.
    """
    if not isinstance(server, RunningServer):
        server.stop()
        return
    try:
        if server.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=grace_s)
    finally:
        release(server)


OnReady = Callable[[RunningServer | RemoteServer, float], None]


class Supervisor:
    """Owns the servers of one run: starts them, restarts once on death, stops them on every exit path.
    Servers on other machines of a fleet (spec.machine not local) go through `remote` (crew/fleet)."""

    def __init__(self, state_dir: Path, *, keep: bool = False, remote: RemoteLauncher | None = None) -> None:
        self.state_dir = state_dir
        self.keep = keep  # keep_warm / plan-gpus up: servers are detached and left running
        self.remote = remote
        self.servers: dict[str, RunningServer | RemoteServer] = {}
        self.restarts: dict[str, int] = {}
        self.exits: dict[str, list[ServerExit]] = {}  # per server id: how each of its processes ended
        self._seen_exit: set[int] = set()  # pids whose end is already in `exits`

    def start_all(self, specs: list[LaunchSpec], *, timeout_s: float = 120.0, on_ready: OnReady | None = None) -> None:
        # Start every process first, then wait: servers on different GPUs load their models in parallel.
        # Only the servers started now are waited on: during failover the dead one is still listed.
        new: list[RunningServer | RemoteServer] = []
        for spec in specs:
            if is_remote(spec):
                if self.remote is None:
                    raise ServingError(f"server {spec.server_id} is planned on {spec.machine}, another machine",
                                       where="gpu_layout.yaml: cluster",
                                       fix="name the Ray cluster its node is in (`cluster: auto` or host:port)")
                new.append(self.remote.launch(spec))
            else:
                new.append(start(spec, self.state_dir, detach=self.keep))
            self.servers[spec.server_id] = new[-1]
        for server in new:
            took = (wait_healthy(server, timeout_s=timeout_s) if isinstance(server, RunningServer)
                    else server.wait_ready(timeout_s))
            if on_ready is not None:
                on_ready(server, took)

    def ensure_alive(self, server_id: str, *, timeout_s: float = 120.0) -> bool:
        """Restart a dead server once. Returns False when it had already been restarted (caller fails over)."""
        server = self.servers.get(server_id)
        if server is None:  # a reused server we did not start: not ours to restart
            return False
        if not isinstance(server, RunningServer):  # its actor restarts it; False: its node or actor is gone
            return server.ensure()
        if server.alive() and server.answers():
            return True
        self.note_exit(server_id)
        if self.restarts.get(server_id, 0) >= 1:
            return False
        self.restarts[server_id] = self.restarts.get(server_id, 0) + 1
        server.lease = None  # keep the port's lease across the restart: no other run can take the port
        stop(server)
        fresh = start(replace(server.spec), self.state_dir, detach=self.keep)
        self.servers[server_id] = fresh
        wait_healthy(fresh, timeout_s=timeout_s)
        return True

    def note_exit(self, server_id: str) -> ServerExit | None:
        """Record how the server's current process ended (once per process); its exit, or None if alive."""
        server = self.servers.get(server_id)
        if not isinstance(server, RunningServer):
            return None
        ex = server.exit_status()
        if ex is not None and server.pid not in self._seen_exit:
            self._seen_exit.add(server.pid)
            self.exits.setdefault(server_id, []).append(ex)
        return ex

    def stop_all(self) -> None:
        for server in self.servers.values():
            stop(server)

    @contextlib.contextmanager
    def running(self, specs: list[LaunchSpec], **kw: object) -> Iterator[Supervisor]:
        """Servers up for the block; down on return, exception, Ctrl-C or SIGTERM."""
        # Signal handlers can only be set from the main thread; elsewhere (a notebook's worker thread)
        # PR_SET_PDEATHSIG and the finally-clause below still take the servers down.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None

        def on_term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        if main:
            signal.signal(signal.SIGTERM, on_term)
        waker = signals_reach_main(self.stop_all) if main else contextlib.nullcontext()
        try:
            with waker:
                self.start_all(specs, **kw)  # type: ignore[arg-type]
                yield self
        except BaseException:
            self.stop_all()  # a failed or interrupted start never leaves servers behind, kept or not
            raise
        else:
            if not self.keep:
                self.stop_all()
            else:  # only the planned servers stay warm: one that failover started is no part of the plan
                planned = {spec.server_id for spec in specs}
                for sid, server in self.servers.items():
                    if sid not in planned or not isinstance(server, RunningServer):  # actors end with us
                        stop(server)
                    else:
                        release(server)  # a kept server holds its port's lease itself from now on
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
