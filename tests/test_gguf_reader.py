"""GGUF header → footprint: the file's own numbers, and a clear error for files that are not whole models."""

from __future__ import annotations

import time
from pathlib import Path

import gguf
import pytest

from crew.errors import ModelError
from crew.models.embedded import EMBEDDED_TINY_REF, embedded_model_path
from crew.models.gguf import _header_reader, read_gguf
from tests.fixtures_gguf import write_synthetic_gguf


@pytest.fixture(scope="module")
def gqa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("g") / "gqa.gguf", n_layer=3, n_embd=512, n_head=8,
                                n_head_kv=2, n_vocab=1000, n_ff=1024, weight_type="Q6_K")


def test_reads_architecture_numbers(gqa: Path) -> None:
    fp = read_gguf(gqa)
    assert (fp.architecture, fp.n_layer, fp.n_embd, fp.n_head, fp.n_head_kv) == ("llama", 3, 512, 8, 2)
    assert (fp.head_dim, fp.n_vocab, fp.n_ff, fp.n_ctx_train, fp.quant) == (64, 1000, 1024, 8192, "Q6_K")
    assert fp.n_head_kv_per_layer == (2, 2, 2)
    assert fp.source == "gguf" and fp.path == str(gqa) and not fp.is_catalog_estimate


def test_weight_bytes_are_the_files_tensor_sizes(gqa: Path) -> None:
    reader = gguf.GGUFReader(str(gqa))
    fp = read_gguf(gqa)
    assert fp.weights_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    per_layer = [sum(int(t.n_bytes) for t in reader.tensors if t.name.startswith(f"blk.{i}."))
                 for i in range(3)]
    assert list(fp.layer_weights_bytes) == per_layer
    sizes = {t.name: int(t.n_bytes) for t in reader.tensors}
    assert fp.token_embd_bytes == sizes["token_embd.weight"] and fp.output_bytes == sizes["output.weight"]
    assert fp.non_repeating_bytes == fp.weights_bytes - sum(per_layer)


def test_moe_swa_and_tied_heads(tmp_path: Path) -> None:
    moe = read_gguf(write_synthetic_gguf(tmp_path / "moe.gguf", n_layer=2, n_embd=256, n_head=4, n_head_kv=1,
                                         n_vocab=500, n_ff=512, n_expert=4, n_expert_used=2))
    assert (moe.n_expert, moe.n_expert_used) == (4, 2)
    assert 0 < moe.expert_weights_bytes < sum(moe.layer_weights_bytes)
    swa = read_gguf(write_synthetic_gguf(tmp_path / "swa.gguf", arch="gemma3", n_layer=7, n_embd=256,
                                         n_head=4, n_head_kv=1, head_dim=128, n_vocab=500, sliding_window=256,
                                         tied_embeddings=True))
    assert swa.sliding_window == 256
    assert swa.swa_layers == (True, True, True, True, True, False, True)
    assert swa.tied_embeddings and swa.output_bytes == 0


def test_fast_header_reader_agrees_with_the_stock_reader(gqa: Path) -> None:
    stock, fast = gguf.GGUFReader(str(gqa)), _header_reader()(str(gqa))
    skipped = {"tokenizer.ggml.tokens"}  # string arrays are stepped over on purpose
    for key, field in stock.fields.items():
        if key not in skipped:
            assert fast.fields[key].contents() == field.contents(), key
    assert [t.name for t in fast.tensors] == [t.name for t in stock.tensors]


def test_embedded_model_header() -> None:
    """The default: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, with its own output head."""
    fp = read_gguf(embedded_model_path())
    assert fp.architecture == "qwen2"
    assert (fp.n_layer, fp.n_embd, fp.n_head, fp.n_head_kv, fp.head_dim, fp.n_ff) == (24, 896, 14, 2, 64, 4864)
    assert (fp.n_vocab, fp.n_ctx_train, fp.quant) == (151936, 32768, "Q4_K_M")
    assert not fp.tied_embeddings and fp.output_bytes > 0


def test_embedded_tiny_model_header() -> None:
    fp = read_gguf(embedded_model_path(EMBEDDED_TINY_REF))
    assert fp.architecture == "llama"
    assert (fp.n_layer, fp.n_embd, fp.n_head, fp.n_head_kv, fp.head_dim) == (30, 576, 9, 3, 64)
    assert (fp.n_vocab, fp.n_ctx_train, fp.quant) == (49152, 8192, "Q4_1")
    assert fp.tied_embeddings


def test_reading_a_header_is_fast() -> None:
    path = embedded_model_path()
    read_gguf(path)  # warm: imports and page cache
    started = time.perf_counter()
    read_gguf(path)
    # Not a speed figure (benchmarks/ has those): a guard against the stock reader's way, ~20 s on this
    # 152k-token vocabulary. ~0.1 s alone; the bound leaves room for a machine busy compiling (1.1 s seen).
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize("cut", [100, 3000, "half"])
def test_truncated_file_is_a_model_error(gqa: Path, tmp_path: Path, cut: int | str) -> None:
    data = gqa.read_bytes()
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(data[: len(data) // 2 if cut == "half" else int(cut)])
    with pytest.raises(ModelError, match="re-download"):
        read_gguf(bad)


def test_foreign_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "x.gguf").write_text("not a model")
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ModelError, match=r"not a GGUF file \(it starts with b'not ', a GGUF with b'GGUF'\)"):
        read_gguf(tmp_path / "x.gguf")
    with pytest.raises(ModelError, match=r"not a GGUF file \(it starts with b''"):
        read_gguf(tmp_path / "empty.gguf")
    with pytest.raises(ModelError, match="file not found"):
        read_gguf(tmp_path / "nope.gguf")


def test_gguf_without_transformer_numbers(tmp_path: Path) -> None:
    w = gguf.GGUFWriter(str(tmp_path / "vocab.gguf"), "llama")
    w.add_token_list(["a", "b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelError, match="block_count"):
        read_gguf(tmp_path / "vocab.gguf")
