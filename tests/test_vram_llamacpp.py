"""The estimate against what llama.cpp itself allocates (its load log), on the embedded model and on synthetic
GGUFs. CPU only: every buffer then lives in one place and is logged. Targets from issue #3."""

from __future__ import annotations

from pathlib import Path

import pytest

from crew.errors import ModelError
from crew.models.embedded import embedded_model_path
from crew.models.gguf import read_gguf
from crew.planner.measured import compare, measure_llama_cpp
from crew.planner.vram import RunSettings, estimate
from tests.fixtures_gguf import (
    EMBEDDED_SETTINGS,
    SYNTHETIC_MODELS,
    SYNTHETIC_SETTINGS,
    settings_label,
    write_synthetic_gguf,
)

pytestmark = pytest.mark.slow

EMBEDDED_CASES = EMBEDDED_SETTINGS
SYNTHETIC_CASES = SYNTHETIC_SETTINGS
_label = settings_label


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic-gguf")
    for name, spec in SYNTHETIC_MODELS.items():
        write_synthetic_gguf(folder / f"{name}.gguf", **spec)
    return folder


def _check(path: Path, settings: RunSettings) -> None:
    fp = read_gguf(path)
    measured, _log = measure_llama_cpp(path, settings)
    rows = compare(estimate(fp, settings), measured)
    bad = [f"{r.component}: estimate {r.estimate_bytes} measured {r.measured_bytes} ({r.error_ratio:+.1%})"
           for r in rows if not r.within_target]
    assert not bad, f"{path.name} {_label(settings)}: " + "; ".join(bad)


@pytest.mark.parametrize("settings", EMBEDDED_CASES, ids=_label)
def test_embedded_model_matches_llama_cpp(settings: RunSettings) -> None:
    _check(embedded_model_path(), settings)


@pytest.mark.parametrize("settings", SYNTHETIC_CASES, ids=_label)
@pytest.mark.parametrize("name", list(SYNTHETIC_MODELS))
def test_synthetic_model_matches_llama_cpp(synthetic_dir: Path, name: str, settings: RunSettings) -> None:
    _check(synthetic_dir / f"{name}.gguf", settings)


def test_quantized_kv_without_flash_attention_is_refused_by_llama_cpp_too(synthetic_dir: Path) -> None:
    """Our SettingsError mirrors a real refusal, not a preference."""
    settings = RunSettings(ctx_tokens=512, kv_type="q8_0", flash_attn=False, device="cpu")
    with pytest.raises(ModelError, match="could not create a context"):
        measure_llama_cpp(synthetic_dir / "mha-32k.gguf", settings)
