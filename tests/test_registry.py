"""Reuse is never silent: a recorded server with other pinning is refused with the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crew.errors import ServingError
from crew.serving import registry
from crew.serving.spec import ServedModel, llamacpp_spec


def _spec(pin: str):  # type: ignore[no-untyped-def]
    return llamacpp_spec("gpu0", (ServedModel(alias="m", path="/m.gguf", ctx_tokens=4096),), 12345,
                         env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": pin})


def test_other_pinning_is_refused_and_dead_records_are_not_reused(tmp_path: Path) -> None:
    alive = registry.record_of(_spec("GPU-aaaa"), os.getpid(), tmp_path / "gpu0.log")
    with pytest.raises(ServingError, match="other pinning or models.*plan-gpus down"):
        registry.reusable(_spec("GPU-bbbb"), alive)
    dead = registry.Record(**{**alive.__dict__, "pid": 2**22 + 7})
    assert registry.reusable(_spec("GPU-bbbb"), dead) is False
    assert registry.reusable(_spec("GPU-aaaa"), None) is False


def test_registry_round_trip_is_atomic(tmp_path: Path) -> None:
    rec = registry.record_of(_spec("GPU-aaaa"), 123, tmp_path / "gpu0.log")
    registry.save(tmp_path, {"gpu0": rec})
    assert registry.load(tmp_path) == {"gpu0": rec}
    assert not list((tmp_path / registry.STATE_DIR).glob("*.tmp"))
    (tmp_path / registry.STATE_DIR / "servers.json").write_text("{not json")
    with pytest.raises(ServingError, match="unreadable server registry"):
        registry.load(tmp_path)
