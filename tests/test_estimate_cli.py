"""`plan-gpus estimate`: the JSON contract, the table, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crew.cli import main
from crew.models.gguf import read_gguf
from crew.planner.vram import RunSettings, estimate
from tests.fixtures_gguf import write_synthetic_gguf

KEYS = {"model", "source", "n_layer", "n_head", "n_head_kv", "head_dim", "n_vocab", "ctx", "parallel",
        "kv_type", "weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "total_bytes"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("cli") / "m.gguf", n_layer=2, n_embd=512, n_head=8,
                                n_head_kv=2, n_vocab=1000, n_ff=1024)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["estimate", *args, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_json_for_a_gguf_file(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, str(model), "--ctx", "2048", "--parallel", "2", "--kv-type", "q8_0",
                   "--device", "cpu")
    assert out.keys() >= KEYS
    assert (out["source"], out["ctx"], out["parallel"], out["kv_type"]) == ("gguf", 2048, 2, "q8_0")
    settings = RunSettings(ctx_tokens=2048, parallel=2, kv_type="q8_0", device="cpu")
    expected = estimate(read_gguf(model), settings)
    assert out["total_bytes"] == expected.total_bytes and out["kv_cache_bytes"] == expected.kv_cache_bytes
    assert out["catalog_estimate"] is False and out["decode_tokens_per_s"] is None


def test_json_for_a_catalog_tag_says_it_is_an_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "ollama/qwen2.5-coder:14b", "--bandwidth-gbs", "936")
    assert out["source"] == "catalog" and out["catalog_estimate"] is True
    assert "catalog estimate" in str(out["note"])
    assert int(str(out["overhead_bytes"])) > 0 and float(str(out["decode_tokens_per_s"])) > 0


def test_embedded_model_ref(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "embedded", "--device", "cpu", "--ctx", "1024")
    assert out["model"] == "embedded" and out["n_layer"] == 24 and out["overhead_bytes"] == 0
    assert out["n_vocab"] == 151936 and out["weights_bytes"] == 485_452_288  # Qwen2.5-Coder-0.5B Q4_K_M


def test_table_output(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "mixtral:8x7b", "--ctx", "8192"]) == 0
    text = capsys.readouterr().out
    for word in ("weights", "KV cache", "compute buffer", "total", "catalog estimate"):
        assert word in text


@pytest.mark.parametrize("args, message", [
    (["no-such-model:7b"], "unknown model"),
    (["llama3:8b", "--kv-type", "q8_0", "--no-flash-attn"], "needs flash attention"),
    (["llama3:8b", "--ctx", "16384"], "exceeds the 8192 tokens"),
    (["llama3:8b", "--parallel", "0"], "parallel must be at least 1"),
    (["llama3:8b", "--bandwidth-gbs", "-1"], "bandwidth"),
    (["llama3:8b", "--kv-type", "q5_1"], ""),  # argparse's own usage error
])
def test_user_mistakes_exit_2_with_one_line(args: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    if message:
        assert err.count("\n") == 1 and "fix:" in err


def test_truncated_gguf_exits_2(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model.read_bytes()[:5000])
    assert main(["estimate", str(cut)]) == 2
    assert "re-download" in capsys.readouterr().err


def test_context_overflow_flag(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "llama3:8b", "--ctx", "16384", "--allow-ctx-overflow")
    assert out["ctx"] == 16384


def test_estimate_command_stays_light() -> None:
    code = ("import sys; from crew.cli import main; main(['estimate', 'llama3:8b', '--json']); "
            "heavy = [m for m in ('crewai', 'litellm', 'llama_cpp', 'numpy') if m in sys.modules]; "
            "sys.stderr.write(repr(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "[]"


def test_kv_type_default_is_the_planner_s_q8_0_on_cuda_and_f16_on_cpu(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_json(capsys, str(model))["kv_type"] == "q8_0"
    assert run_json(capsys, str(model), "--device", "cpu")["kv_type"] == "f16"
