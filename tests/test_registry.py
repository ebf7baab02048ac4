"""Reuse is never silent: a recorded server with other pinning is refused with the fix; a registry that is
not what we write is one line; only a process verified to be the recorded server is ever signalled."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crew.errors import ConfigError, ServingError
from crew.serving import registry
from crew.serving.spec import ServedModel, llamacpp_spec


def _spec(pin: str):  # type: ignore[no-untyped-def]
    return llamacpp_spec("gpu0", (ServedModel(alias="m", path="/m.gguf", ctx_tokens=4096),), 12345,
                         env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": pin})


def test_other_pinning_is_refused_and_dead_records_are_not_reused(tmp_path: Path) -> None:
    server = subprocess.Popen(["sleep", "120"], start_new_session=True)
    alive = registry.record_of(_spec("GPU-aaaa"), server.pid, tmp_path / "gpu0.log")
    try:
        with pytest.raises(ServingError, match="other pinning or models.*plan-gpus down"):
            registry.reusable(_spec("GPU-bbbb"), alive)
    finally:
        server.kill()
        server.wait()
    dead = registry.Record(**{**alive.__dict__, "pid": 2**22 + 7})
    assert registry.reusable(_spec("GPU-bbbb"), dead) is False
    assert registry.reusable(_spec("GPU-aaaa"), None) is False


def test_registry_round_trip_is_atomic(tmp_path: Path) -> None:
    rec = registry.record_of(_spec("GPU-aaaa"), 123, tmp_path / "gpu0.log")
    registry.save(tmp_path, {"gpu0": rec})
    assert registry.load(tmp_path) == {"gpu0": rec}
    assert not list((tmp_path / registry.STATE_DIR).glob("*.tmp"))
    (tmp_path / registry.STATE_DIR / "servers.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable server registry"):
        registry.load(tmp_path)


# ------------------------------------------------------------------------------ §4: a malformed registry


@pytest.mark.parametrize(("content", "where"), [
    (b"[1, 2]", "servers.json: the registry is a list"),
    (b'{"gpu0": "pid 12"}', "servers.json: gpu0: the record is str"),
    (None, "servers.json: gpu0.pid: must be a whole number above 0"),  # text pid
    (b'{"gpu0": {"pid": 0}}', "servers.json: gpu0.server_id: missing field"),
    (b"\xff\xfe{}", "servers.json: unreadable server registry"),
    (b"[" * 100_000 + b"]" * 100_000, "servers.json: unreadable server registry"),
])
@pytest.mark.parametrize("command", ["down", "status", "up"])
def test_malformed_registry_is_one_line_exit_2(project_dir: Path, capsys: pytest.CaptureFixture[str],
                                               content: bytes | None, where: str, command: str) -> None:
    from crew.cli import main

    if content is None:
        rec = registry.record_of(_spec("GPU-a"), 4242, project_dir / "gpu0.log")
        content = json.dumps({"gpu0": {**rec.__dict__, "pid": "4242"}}).encode()
    (project_dir / registry.STATE_DIR).mkdir()
    (project_dir / registry.STATE_DIR / "servers.json").write_bytes(content)
    assert main([command, "--project", str(project_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert where in err and "fix: delete the file" in err


# ------------------------------------------------------------------------------ §5: only our own processes


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process that leads its own process group — what a stale pid can turn into."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _registry_with(root: Path, rec: registry.Record) -> None:
    (root / registry.STATE_DIR).mkdir(exist_ok=True)
    (root / registry.STATE_DIR / "servers.json").write_text(json.dumps({rec.server_id: rec.__dict__}))


def test_down_leaves_a_reused_pid_alone_and_drops_its_record(
        tmp_path: Path, bystander: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]) -> None:
    from crew.cli import main

    # The server we recorded exited long ago; its pid now belongs to the bystander (another start time).
    ours = registry.record_of(_spec("GPU-a"), bystander.pid, tmp_path / "gpu0.log")
    assert ours.start_ticks is not None
    _registry_with(tmp_path, registry.Record(**{**ours.__dict__, "start_ticks": ours.start_ticks - 100}))
    assert main(["down", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"left alone: pid {bystander.pid} is now another process (sleep 120); record dropped" in out
    time.sleep(0.2)
    assert bystander.poll() is None  # still running: never signalled
    assert registry.load(tmp_path) == {}


def test_down_leaves_records_it_cannot_verify_alone(tmp_path: Path, bystander: subprocess.Popen[bytes],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from crew.cli import main

    legacy = {"server_id": "gpu0", "pid": bystander.pid, "port": 12345, "env": {}, "models": ["m"],
              "log": "x.log", "started": 0.0}  # what today's main records: a pid, nothing to verify it by
    (tmp_path / registry.STATE_DIR).mkdir()
    (tmp_path / registry.STATE_DIR / "servers.json").write_text(json.dumps({"gpu0": legacy}))
    assert main(["down", "--project", str(tmp_path)]) == 0
    assert "left alone" in capsys.readouterr().out
    time.sleep(0.2)
    assert bystander.poll() is None
    # pid 1 is never a server of ours, whatever its record says: no kill(-1)
    init = registry.Record(**{**legacy, "pid": 1, "start_ticks": 5})
    assert init.check().verdict == "unverifiable"  # (checked first: on code that would signal it, stop here)
    assert registry.stop_record(init) == "left alone: pid 1 is not a server localcrew started; record dropped"


def test_down_stops_a_verified_server_and_its_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crew.cli import main

    server = subprocess.Popen(["sh", "-c", "sleep 120 & wait"], start_new_session=True)
    try:
        time.sleep(0.2)
        _registry_with(tmp_path, registry.record_of(_spec("GPU-a"), server.pid, tmp_path / "gpu0.log"))
        assert main(["down", "--project", str(tmp_path)]) == 0
        assert f"gpu0: stopped (pid {server.pid})" in capsys.readouterr().out
        assert server.wait(timeout=10) != 0
    finally:
        server.kill()
        server.wait()


def test_save_never_forgets_a_live_server_another_run_recorded(tmp_path: Path) -> None:
    a = subprocess.Popen(["sleep", "120"], start_new_session=True)
    b = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        run_a = registry.record_of(_spec("GPU-a"), a.pid, tmp_path / "a.log")
        run_b = registry.record_of(_spec("GPU-a"), b.pid, tmp_path / "b.log")
        registry.save(tmp_path, {"gpu0": run_a})
        registry.save(tmp_path, {"gpu0": run_b})  # run B loaded the registry before run A saved
        saved = registry.load(tmp_path)
        assert {r.pid for r in saved.values()} == {a.pid, b.pid}
        assert saved["gpu0"].pid == b.pid and saved["gpu0@12345"].pid == a.pid
        a.kill()
        a.wait()
        registry.save(tmp_path, {})  # what `plan-gpus down` writes: only the still-running one stays
        assert [r.pid for r in registry.load(tmp_path).values()] == [b.pid]
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_a_run_says_it_drops_a_stale_record_and_starts_its_own(tmp_path: Path,
                                                               bystander: subprocess.Popen[bytes]) -> None:
    stale = registry.record_of(_spec("GPU-a"), bystander.pid, tmp_path / "gpu0.log")
    records = {"gpu0": registry.Record(**{**stale.__dict__, "start_ticks": (stale.start_ticks or 0) + 7})}
    lines: list[str] = []
    reused, to_start = registry.partition([_spec("GPU-a")], records, say=lines.append)
    assert reused == [] and [s.server_id for s in to_start] == ["gpu0"] and records == {}
    assert lines == [f"  server gpu0: pid {bystander.pid} is now another process (sleep 120); left alone, "
                     "its record dropped"]
    assert bystander.poll() is None
