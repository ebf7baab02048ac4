"""The built-in catalog: the models users pick, numbers that agree with each other, quant suggestions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crew.models.catalog import _models, catalog_footprint, catalog_tags, parameter_count, quant_variants
from crew.planner.vram import RunSettings, estimate

REQUIRED = [
    "mistral:7b-instruct", "llama3:8b-instruct-q6_K", "codellama:7b", "codellama:13b",
    "qwen2.5-coder:1.5b", "qwen2.5-coder:7b", "qwen2.5-coder:14b", "qwen2.5-coder:32b", "mixtral:8x7b",
    "nous-hermes-2-mistral-7b-dpo",
    "llama3:70b-instruct-q2_K", "llama3:70b-instruct-q4_K_M", "mistral-nemo:12b", "llama3.1:8b", "qwen3:8b",
    "qwen3:14b", "gemma3:12b", "phi4:14b", "deepseek-coder-v2:16b",
]
# Bits per weight a file of each quant mix can have (K-quant mixes keep some tensors at higher precision,
# and rows whose width is not a multiple of 256 fall back to a larger type).
BPW = {"q2_K": (2.6, 3.4), "q4_K_M": (4.5, 5.4), "q5_K_M": (5.5, 6.2), "q6_K": (6.5, 7.3),
       "q8_0": (8.45, 8.7)}


@pytest.mark.parametrize("tag", REQUIRED)
def test_required_models_are_in_the_catalog(tag: str) -> None:
    assert tag in catalog_tags()
    fp = catalog_footprint(tag)
    assert fp.is_catalog_estimate and fp.source == "catalog" and fp.path is None
    assert "huggingface.co" in fp.citation


def test_common_quant_tags_are_there() -> None:
    for quant in ("q4_K_M", "q5_K_M", "q6_K", "q8_0"):
        assert f"qwen2.5-coder:14b-instruct-{quant}" in catalog_tags()


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m['name']}:{m['size']}")
def test_architecture_reproduces_the_published_parameter_count(model: dict[str, object]) -> None:
    # deepseek2's latent attention is not spelled out in the catalog, hence its looser bound
    tolerance = 0.06 if model["architecture"] == "deepseek2" else 0.01
    assert parameter_count(model) / 1e9 == pytest.approx(model["params_b"], rel=tolerance)


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m['name']}:{m['size']}")
def test_file_sizes_fit_their_quant(model: dict[str, object]) -> None:
    sizes = model["sizes_gb"]
    assert isinstance(sizes, dict) and model["default_quant"] in sizes
    for quant, gb in sizes.items():
        low, high = BPW[quant]
        assert low <= gb * 8 / float(model["params_b"]) <= high, quant  # type: ignore[arg-type]


def test_quant_variants_smallest_first() -> None:
    variants = quant_variants("qwen2.5-coder:14b-instruct-q8_0")
    assert variants == [f"qwen2.5-coder:14b-instruct-{q}" for q in ("q4_K_M", "q5_K_M", "q6_K", "q8_0")]
    assert quant_variants("ollama-does-not-have-this:1b") == []
    sizes = [catalog_footprint(t).weights_bytes for t in quant_variants("llama3:70b")]
    assert sizes == sorted(sizes) and len(sizes) == 2


def test_aliases_pull_the_default_quant() -> None:
    alias = catalog_footprint("qwen2.5-coder:14b")
    explicit = catalog_footprint("qwen2.5-coder:14b-instruct-q4_K_M")
    assert replace(alias, name=explicit.name) == explicit


def test_catalog_footprints_split_layers_and_embeddings() -> None:
    fp = catalog_footprint("gemma3:12b")
    assert fp.tied_embeddings and fp.sliding_window == 1024 and sum(fp.swa_layers) == 40
    assert sum(fp.layer_weights_bytes) + fp.token_embd_bytes <= fp.weights_bytes
    moe = catalog_footprint("mixtral:8x7b")
    assert 0.9 < moe.expert_weights_bytes / moe.weights_bytes < 1.0


@pytest.mark.parametrize("tag", ["qwen2.5-coder:32b", "llama3:70b", "mixtral:8x7b", "gemma3:12b"])
def test_every_catalog_model_estimates(tag: str) -> None:
    fp = catalog_footprint(tag)
    est = estimate(fp, RunSettings(ctx_tokens=min(8192, fp.n_ctx_train)))
    assert est.total_bytes > fp.weights_bytes * 0.9
