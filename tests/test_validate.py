"""`plan-gpus validate`: the pure verdict, a real CPU run of `embedded-tiny`, and the GPU refusals."""

from __future__ import annotations

import json

import pytest

from crew.cli import main
from crew.models.embedded import EMBEDDED_TINY_REF
from crew.planner.validate import MIB, roofline_pct, verdict
from tests.conftest import cli_args
from tests.layouts import GIB
from tests.monitor_fakes import three_gpus


@pytest.mark.parametrize(("needed", "free", "want"), [
    (4 * GIB, 12 * GIB, "fits with headroom"),
    (11 * GIB, 12 * GIB, "tight"),             # 1 GiB left is under 10 % of 12 GiB
    (12 * GIB, 12 * GIB, "tight"),
    (12 * GIB + 1, 12 * GIB, "does not fit"),
    (800 * MIB, 1 * GIB, "tight"),             # 224 MiB left: under the 256 MiB floor
    (700 * MIB, 1 * GIB, "fits with headroom"),
])
def test_verdict(needed: int, free: int, want: str) -> None:
    assert verdict(needed, free) == want


def test_roofline_pct() -> None:
    assert roofline_pct(50.0, 200.0) == 25.0
    assert roofline_pct(50.0, None) is None


def test_validate_embedded_on_the_cpu(capsys) -> None:  # type: ignore[no-untyped-def]
    """Loads a real model with llama.cpp (`embedded-tiny`: the command's plumbing is checked here; the
    estimate's accuracy on the default model is tests/test_vram_llamacpp.py's): measured buffers match the
    estimate within 3 %."""
    rc = main(["validate", EMBEDDED_TINY_REF, "--ctx", "512", "--prompt-tokens", "64", "--decode-tokens", "8",
               "--bandwidth-gbs", "20", "--threads", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["schema"] == "localcrew.validate/1"
    assert out["device"] == "cpu" and out["verdict"] == "fits with headroom"
    assert abs(out["estimate_error_ratio"]) < 0.03
    assert out["prompt_tokens"] == 64 and out["decode_tokens"] == 8
    assert out["prompt_tokens_per_s"] > 0 and out["decode_tokens_per_s"] > 0
    assert out["bandwidth_source"] == "given" and out["roofline_tokens_per_s"] > 0
    assert out["roofline_pct"] == pytest.approx(100 * out["decode_tokens_per_s"] / out["roofline_tokens_per_s"])


def test_validate_on_a_gpu_without_a_driver_for_real(capsys) -> None:  # type: ignore[no-untyped-def]
    from crew.hardware.nvml import NvmlUnavailable
    from crew.monitor.live import PynvmlLive

    try:
        PynvmlLive().open()
    except NvmlUnavailable:
        assert main(["validate", "embedded", "--gpu", "0"]) == 2
        err = capsys.readouterr().err
        assert "cannot validate on GPU 0" in err and "fix: omit --gpu" in err
        return
    pytest.skip(reason="an NVIDIA driver is loaded here")


def test_validate_on_a_missing_gpu() -> None:
    from crew.cli.validate import run_validate
    from crew.errors import UsageError

    ns = cli_args("validate", "embedded", gpu=7, ctx=512, prompt_tokens=64, decode_tokens=8, json=True)
    with pytest.raises(UsageError, match="there is no GPU 7"):
        run_validate(ns, nvml=three_gpus())


def test_bad_token_counts_are_usage_errors(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", "embedded", "--prompt-tokens", "8", "--decode-tokens", "16"]) == 2
    assert "--decode-tokens" in capsys.readouterr().err


def test_validate_gpu_path_wiring_with_a_fake_nvml(capsys) -> None:  # type: ignore[no-untyped-def]
    """The GPU path with an injected NVML: the device label, free memory, bandwidth from NVML's clock and
    bus width, and memory as the NVML delta. (This llama.cpp is a CPU build: the model really loads on the
    CPU; the figure checked is the delta the fake reports, not a real GPU's.)"""
    from crew.cli.validate import run_validate

    nvml = three_gpus()
    nvml.live[0].grow_bytes = 300 * MIB
    ns = cli_args("validate", EMBEDDED_TINY_REF, gpu=0, ctx=512, prompt_tokens=64, decode_tokens=8, threads=1,
                  json=True)
    assert run_validate(ns, nvml=nvml) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "GPU 0 (NVIDIA GeForce RTX 3090)"
    assert out["measured_bytes"] == 300 * MIB and out["bandwidth_source"] == "nvml"
    assert out["free_bytes"] == (24576 - 400) * MIB and out["verdict"] == "fits with headroom"


def test_the_table_says_which_bandwidth_the_roofline_is_and_that_it_is_not_measured() -> None:
    from rich.console import Console

    from crew.cli.validate import validation_table
    from crew.planner.validate import Validation

    v = Validation(model="embedded", device="cpu", estimate_bytes=GIB, measured_bytes=GIB, free_bytes=8 * GIB,
                   verdict="fits with headroom", prompt_tokens=256, prompt_tokens_per_s=60.0, decode_tokens=64,
                   decode_tokens_per_s=3.9, bandwidth_bytes_per_s=20e9, bandwidth_source="memcpy",
                   roofline_tokens_per_s=40.0, roofline_pct=9.75, ctx_tokens=4096)
    console = Console(width=120, record=True)
    console.print(validation_table(v))
    text = console.export_text()
    assert "bandwidth (this machine's RAM, one-thread memcpy)" in text and "20.0 GB/s" in text
    assert "decode roofline (bandwidth bound, not measured)" in text
