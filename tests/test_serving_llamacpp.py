"""Real llama.cpp servers on loopback: start, answer, stop — and no process left on any exit path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crew.models.embedded import EMBEDDED_TINY_REF, embedded_model_path
from crew.serving.process import Supervisor, free_port, healthy, http_json, port_is_free, start, stop
from crew.serving.spec import LOOPBACK, ServedModel, llamacpp_spec
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def small_spec(port: int, server_id: str = "cpu"):  # type: ignore[no-untyped-def]
    """A server of `embedded-tiny`: these tests are about processes, not answers (docs/testing.md)."""
    path = str(embedded_model_path(EMBEDDED_TINY_REF))
    model = ServedModel(alias="smollm2", path=path, ctx_tokens=1024, batch=256, ubatch=256)
    return llamacpp_spec(server_id, (model,), port, env={"CUDA_VISIBLE_DEVICES": ""})


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie still answers kill(0); read its state
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_start_complete_stop(tmp_path: Path) -> None:
    spec = small_spec(free_port(18300))
    assert spec.bind_address == LOOPBACK and "--host" in spec.argv and LOOPBACK in spec.argv
    sup = Supervisor(tmp_path)
    with sup.running([spec], timeout_s=120):
        server = sup.servers["cpu"]
        assert healthy(spec)
        reply = http_json(spec.base_url + "/v1/chat/completions", timeout_s=60, payload={
            "model": "smollm2", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hello."}]})
        assert isinstance(reply, dict)
        assert reply["choices"][0]["message"]["content"].strip()
        # Bound to loopback only: the listening socket in /proc/net/tcp is 127.0.0.1 (0100007F).
        hexport = f"{spec.port:04X}"
        listening = [ln.split()[1] for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if ln.split()[3] == "0A"]
        assert f"0100007F:{hexport}" in listening
        assert f"00000000:{hexport}" not in listening
        pid = server.pid
    assert _gone(pid)
    assert port_is_free(spec.port)
    assert "llama" in (tmp_path / "cpu.log").read_text().lower()


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from crew.errors import ServingError

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ServingError, match=f"port {port} is already in use"):
            start(small_spec(port), tmp_path)


def test_bad_model_fails_with_log_tail(tmp_path: Path) -> None:
    from crew.errors import ServingError
    from crew.serving.process import wait_healthy

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    spec = llamacpp_spec("cpu", (ServedModel(alias="x", path=str(bad), ctx_tokens=512),), free_port(18350))
    server = start(spec, tmp_path)
    with pytest.raises(ServingError, match="exited with code") as info:
        wait_healthy(server, timeout_s=60)
    assert "last lines" in info.value.one_line()
    stop(server)


SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.test_serving_llamacpp import small_spec
    from crew.serving.process import Supervisor, free_port
    sup = Supervisor(Path({state!r}))
    # the process that starts a server leases its port (free_port): a port leased elsewhere is refused
    with sup.running([small_spec(free_port({port}))], timeout_s=120):
        print(sup.servers["cpu"].pid, flush=True)
        {body}
""")


@pytest.mark.parametrize("how", ["exception", "sigint", "sigterm", "sigkill"])
def test_no_orphan_on_any_exit_path(tmp_path: Path, how: str) -> None:
    body = {"exception": "raise RuntimeError('boom')"}.get(how, "time.sleep(120)")
    code = SCRIPT.format(root=str(ROOT), state=str(tmp_path), port=18400, body=body)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), proc.stderr.read() if proc.stderr else ""
    server_pid = int(line)
    if how != "exception":
        sig = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[how]
        proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert _gone(server_pid), f"server {server_pid} outlived its parent ({how})"


def test_keep_warm_keeps_the_planned_servers_only_and_records_them_as_they_are(tmp_path: Path) -> None:
    """keep_warm: a server the router started during the run (failover) is stopped at the end, not left
    running unrecorded; a planned server restarted mid-run is recorded with its new pid."""
    from crew.serving import registry
    from crew.serving.session import remember_kept as _remember

    planned = small_spec(free_port(13100), "gpu0")
    extra = small_spec(free_port(planned.port + 1, taken={planned.port}), "gpu1-failover-tester")
    sup = Supervisor(tmp_path / "servers", keep=True)
    records: dict[str, registry.Record] = {}
    try:
        with sup.running([planned]):
            first_pid = sup.servers["gpu0"].pid
            _remember(sup, ["gpu0"], records, tmp_path)
            os.kill(first_pid, signal.SIGKILL)
            assert sup.ensure_alive("gpu0")  # restarted: a new process
            sup.start_all([extra])
            extra_pid = sup.servers[extra.server_id].pid
            _remember(sup, ["gpu0"], records, tmp_path)
        kept = sup.servers["gpu0"]
        assert kept.alive() and kept.pid != first_pid and healthy(planned)
        assert _gone(extra_pid) and not healthy(extra)
        saved = registry.load(tmp_path)
        assert set(saved) == {"gpu0"} and saved["gpu0"].pid == kept.pid
    finally:
        sup.stop_all()


class _Neighbour:
    """Something else on our port that answers /v1/models like a llama.cpp server would."""

    def __init__(self, port: int) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = b'{"object": "list", "data": [{"id": "smollm2"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_neighbour_on_our_port_is_a_failed_start_not_our_server(tmp_path: Path) -> None:
    """Another program binds the port after we chose it, while our server still loads its model: our server
    dies with "address already in use", and the neighbour's answers must not make it look ready."""
    from crew.errors import ServingError
    from crew.serving.process import wait_healthy

    spec = small_spec(free_port(18450))
    server = start(spec, tmp_path)  # importing llama_cpp and loading the model: not bound yet
    neighbour = _Neighbour(spec.port)
    try:
        assert healthy(spec)  # the port answers — but not from our process
        with pytest.raises(ServingError, match="exited with code") as info:
            wait_healthy(server, timeout_s=90)
        assert "address already in use" in info.value.one_line().lower()
    finally:
        neighbour.close()
        stop(server)


TWO = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.test_serving_llamacpp import small_spec
    from crew.serving.process import Supervisor, free_port
    print("imported", flush=True)
    go = Path({go!r})
    while not go.exists():
        time.sleep(0.002)
    spec = small_spec(free_port(18470))   # both choose at the same moment
    sup = Supervisor(Path({state!r}))
    with sup.running([spec], timeout_s=120):
        print(json.dumps({{"port": spec.port, "pid": sup.servers["cpu"].pid}}), flush=True)
        time.sleep(20)
""")


def test_two_runs_started_at_once_each_get_their_own_server(tmp_path: Path) -> None:
    import json

    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", TWO.format(root=str(ROOT), go=str(go),
                                                                 state=str(tmp_path / f"run{i}"))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for i in (1, 2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "imported"
        go.touch()
        ready = []
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.startswith("{"), (p.wait(timeout=60), p.stderr.read() if p.stderr else "")
            ready.append(json.loads(line))
        ports = {r["port"] for r in ready}
        assert len(ports) == 2, f"both runs chose port {ports}"
        from crew.serving.procinfo import owns_listener

        for r in ready:  # each run's server is the one that answers on that run's port
            assert owns_listener(r["pid"], LOOPBACK, r["port"])
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
