"""`plan-gpus pull`: every planned model obtained for the plan's backend, resumable and checked.

No network here: Hugging Face is a local server with the same download shapes (tests/fake_hf.py), Ollama
the fake Ollama API (tests/fake_ollama.py). What is real: the planner, the downloader, the GGUF reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crew.cli import main
from crew.models.sources import cached_path, hf_file
from tests.conftest import ROOT
from tests.fake_hf import FakeHf
from tests.fixtures_gguf import write_synthetic_gguf

PLANNED = ("llama3.1:8b", "qwen2.5-coder:14b", "qwen2.5-coder:7b")  # the rtx3090 profile's plan


@pytest.fixture
def gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_synthetic_gguf(path, n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_vocab=256)
    return path.read_bytes()


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOCALCREW_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama-store"))
    monkeypatch.chdir(ROOT)
    return tmp_path / "models"


def test_every_catalog_tag_names_a_repository_and_a_file() -> None:
    from crew.models.catalog import catalog_tags

    for tag in catalog_tags():
        f = hf_file(tag)
        assert f is not None and f.repo.count("/") == 1 and f.filename.endswith(".gguf"), tag
        assert "{" not in f.filename and f.filename.upper().count(f.filename.split("-")[-1].upper()) >= 1
    assert hf_file("qwen2.5-coder:7b").filename == "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"  # type: ignore[union-attr]
    assert hf_file("no-such:1b") is None


def test_pull_fetches_each_planned_gguf_checked_and_the_planner_then_reads_its_header(
        models: Path, gguf_bytes: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    from crew.models.resolve import resolve_footprint

    assert resolve_footprint("qwen2.5-coder:7b").is_catalog_estimate
    with FakeHf(gguf_bytes) as hf:
        assert main(["pull", "--profile", "rtx3090", "--hf-endpoint", hf.url]) == 0
        out = capsys.readouterr().out
        assert "backend auto picked llama.cpp" in out
        for tag in PLANNED:
            path = cached_path(hf_file(tag), models)  # type: ignore[arg-type]
            assert path.read_bytes() == gguf_bytes and f"fetched {tag}" in " ".join(out.split())
        # the real (tiny) files replace the catalog's estimates, so the manager's first choice now fits: the
        # plan changes, and pull fetches what the new plan adds in the same command
        assert "with the real files the plan now also uses: qwen3:8b" in out and "fetched qwen3:8b" in out
        assert not list(models.rglob("*.part"))
        fp = resolve_footprint("qwen2.5-coder:7b")  # the file's own header now, not the catalog's estimate
        assert not fp.is_catalog_estimate and fp.n_layer == 2
        # a second pull finds everything and fetches nothing
        before = len(hf.requests)
        assert main(["pull", "--profile", "rtx3090", "--hf-endpoint", hf.url]) == 0
        assert len(hf.requests) == before and capsys.readouterr().out.count("downloaded before") == 4


def test_an_interrupted_download_resumes_where_it_stopped(models: Path, gguf_bytes: bytes) -> None:
    from crew.models.download import fetch

    source = hf_file("qwen2.5-coder:7b")
    assert source is not None
    dest = cached_path(source, models)
    dest.parent.mkdir(parents=True)
    half = len(gguf_bytes) // 2
    dest.with_name(dest.name + ".part").write_bytes(gguf_bytes[:half])
    with FakeHf(gguf_bytes) as hf:
        fetch(source.url(hf.url), dest)
        assert ("GET", f"/cdn/{hf.sha256}", f"bytes={half}-") in hf.requests
        assert hf.served_bytes == len(gguf_bytes) - half
    assert dest.read_bytes() == gguf_bytes


def test_a_wrong_file_is_deleted_never_used(models: Path, gguf_bytes: bytes,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with FakeHf(gguf_bytes, corrupt=True) as hf:
        assert main(["pull", "--profile", "rtx3090", "--hf-endpoint", hf.url]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "failed" in out and "sha256" in out and "it was deleted" in out
    assert not [p for p in models.rglob("*") if p.is_file()]  # neither the file nor a .part


def test_offline_says_what_could_not_be_reached_and_the_command_to_run_elsewhere(
        models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crew.serving.process import free_port

    closed = f"http://127.0.0.1:{free_port(13900)}"
    assert main(["pull", "--profile", "rtx3090", "--hf-endpoint", closed]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if "unreachable" in line]
    assert len(lines) == 3 and all("cannot reach the download server" in line for line in lines)
    assert all("curl -L -C - -o '" in line and "/resolve/main/" in line for line in lines)
    assert "3 of 3 model(s) not here" in captured.err


def test_dry_run_fetches_nothing(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "--profile", "rtx3090", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would fetch") == 3 and "huggingface.co/bartowski/" in out and not models.exists()


def test_ollama_backend_pulls_through_the_ollama_api(models: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fake_ollama import FakeOllama

    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text(yaml.safe_dump({"backend": "ollama", "gpus": [{"name": "RTX 3090", "memory_gib": 24}]}))
    with FakeOllama() as fake:
        for tag in PLANNED:
            fake.add_to_library(tag, 1000, 2000)
        fake.add_model("qwen2.5-coder:7b", 3000)
        assert main(["pull", "--layout", str(layout), "--ollama-url", fake.base_url]) == 0
        pulled = [r for r in fake.requests if r[1] == "/api/pull"]
    out = " ".join(capsys.readouterr().out.split())
    assert "fetched llama3.1:8b" in out and "fetched qwen2.5-coder:14b" in out
    assert "present qwen2.5-coder:7b" in out and len(pulled) == 2


def test_ollama_not_running_gives_the_pull_commands(models: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from crew.serving.process import free_port

    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text(yaml.safe_dump({"backend": "ollama", "gpus": [{"name": "RTX 3090", "memory_gib": 24}]}))
    url = f"http://127.0.0.1:{free_port(13950)}"
    assert main(["pull", "--layout", str(layout), "--ollama-url", url]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"cannot reach Ollama at {url}" in out and "ollama pull qwen2.5-coder:14b" in out
    assert "ollama pull ollama/" not in out


def test_backend_auto_says_which_it_picked_and_why() -> None:
    from crew.hardware.backend import choose_backend

    backend, why = choose_backend("auto", which=lambda name: "/usr/local/bin/ollama")
    assert backend == "ollama" and "/usr/local/bin/ollama" in why and "backend: llamacpp" in why
    backend, why = choose_backend("auto", which=lambda name: None)
    assert backend == "llamacpp" and "no `ollama` binary on PATH" in why
    assert choose_backend("llamacpp", which=lambda name: "/x")[0] == "llamacpp"
