"""Where a planned model comes from, for `plan-gpus pull` and the resolver. Pure (the cache folder is read
from the environment only in `models_dir`).

A catalog tag names a GGUF on Hugging Face (catalog.yaml: `gguf_repo`, `gguf_file`); downloaded files live in
the user's cache, `$LOCALCREW_MODELS_DIR` or `~/.cache/localcrew/models/<owner>--<repo>/<file>` (see
`embedded.cache_dir`), where the
resolver finds them next time (a catalog estimate becomes the file's own header).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HF_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HfFile:
    tag: str
    repo: str       # owner/name on Hugging Face
    filename: str
    approx_bytes: int  # the catalog's published size: for progress, never for checking

    def url(self, endpoint: str = HF_ENDPOINT) -> str:
        return f"{endpoint.rstrip('/')}/{self.repo}/resolve/main/{self.filename}"


def hf_file(tag: str) -> HfFile | None:
    """The GGUF a catalog tag pulls; None for a tag the catalog does not know."""
    from crew.models.catalog import lookup

    entry = lookup(tag)
    if entry is None or "gguf_repo" not in entry.model:
        return None
    quant = "Q" + entry.quant[1:]  # q4_K_M → Q4_K_M, as publishers name their files
    filename = str(entry.model["gguf_file"]).replace("{QUANT}", quant)
    return HfFile(tag=entry.tag, repo=str(entry.model["gguf_repo"]), filename=filename,
                  approx_bytes=entry.file_bytes)


def models_dir() -> Path:
    """$LOCALCREW_MODELS_DIR, else the models folder of localcrew's cache (where the embedded model is)."""
    env = os.environ.get("LOCALCREW_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    from crew.models.embedded import cache_dir

    return cache_dir() / "models"


def cached_path(f: HfFile, root: Path | None = None) -> Path:
    return (root or models_dir()) / f.repo.replace("/", "--") / f.filename


def downloaded(tag: str) -> Path | None:
    """The file `plan-gpus pull` fetched for `tag`, if it is there (a finished download: never a .part)."""
    f = hf_file(tag)
    if f is None:
        return None
    path = cached_path(f)
    return path if path.is_file() else None
