"""Installed Ollama tags, read from a model store built in tmp_path around a real GGUF."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from crew.errors import ModelError
from crew.models.ollama_store import MODEL_MEDIA_TYPE, manifest_path, model_blob
from crew.models.resolve import resolve_footprint
from tests.fixtures_gguf import write_synthetic_gguf


def install(store: Path, tag: str, gguf_file: Path, *, with_model_layer: bool = True) -> str:
    """Lay out a tag the way `ollama pull` does: blobs/sha256-<hex> and a manifest naming them."""
    data = gguf_file.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    shutil.copy(gguf_file, store / "blobs" / digest.replace(":", "-"))
    template: dict[str, object] = {"mediaType": "application/vnd.ollama.image.template",
                                   "digest": "sha256:" + "0" * 64}
    layers = [template]
    if with_model_layer:
        layers.append({"mediaType": MODEL_MEDIA_TYPE, "digest": digest, "size": len(data)})
    manifest = manifest_path(tag, store)
    assert manifest is not None
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))
    return digest


@pytest.fixture
def store(tmp_path: Path) -> Path:
    model = write_synthetic_gguf(tmp_path / "src.gguf", n_layer=2, n_embd=256, n_head=4, n_head_kv=2,
                                 n_vocab=300, n_ff=512)
    root = tmp_path / "models"
    install(root, "tiny:q8", model)
    install(root, "someone/tiny", model)
    return root


def test_installed_tag_reads_the_model_blob(store: Path) -> None:
    fp = resolve_footprint("tiny:q8", ollama_models_dir=store)
    assert fp.source == "ollama-store" and fp.name == "tiny:q8" and not fp.is_catalog_estimate
    assert (fp.n_layer, fp.n_embd, fp.n_head_kv) == (2, 256, 2)
    assert fp.path is not None and Path(fp.path).parent == store / "blobs"


def test_crewai_prefix_namespace_and_default_tag(store: Path) -> None:
    assert resolve_footprint("ollama/tiny:q8", ollama_models_dir=store).source == "ollama-store"
    assert resolve_footprint("someone/tiny:latest", ollama_models_dir=store).n_layer == 2
    assert resolve_footprint("someone/tiny", ollama_models_dir=store).n_layer == 2


def test_manifest_layout() -> None:
    root = Path("/m")
    expected = root / "manifests/registry.ollama.ai/library/qwen2.5-coder/14b"
    assert manifest_path("qwen2.5-coder:14b", root) == expected
    assert manifest_path("hf.co/user/m:q4", root) == root / "manifests/hf.co/user/m/q4"
    assert manifest_path("../../etc:passwd", root) is None


def test_ollama_models_env_is_the_default_store(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    assert resolve_footprint("tiny:q8").source == "ollama-store"


def test_not_installed_falls_back_to_the_catalog(tmp_path: Path) -> None:
    fp = resolve_footprint("qwen2.5-coder:14b", ollama_models_dir=tmp_path)
    assert fp.source == "catalog" and fp.is_catalog_estimate


def test_manifest_without_model_layer(tmp_path: Path) -> None:
    model = write_synthetic_gguf(tmp_path / "src.gguf", n_layer=1, n_embd=256, n_head=4, n_head_kv=4,
                                 n_vocab=300)
    install(tmp_path / "models", "broken:1", model, with_model_layer=False)
    with pytest.raises(ModelError, match="no model layer"):
        model_blob("broken:1", tmp_path / "models")


def test_missing_blob(store: Path) -> None:
    for blob in (store / "blobs").iterdir():
        blob.unlink()
    with pytest.raises(ModelError, match="missing"):
        resolve_footprint("tiny:q8", ollama_models_dir=store)


def test_unknown_everywhere_lists_close_names(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        resolve_footprint("qwen2.5-codr:14b", ollama_models_dir=tmp_path)
    assert "qwen2.5-coder:14b" in str(err.value) and err.value.exit_code == 2
