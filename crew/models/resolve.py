"""One entry point from a model reference to a footprint: a file, an installed Ollama tag, or the catalog.

Order: the special refs `embedded` and `embedded-tiny`; a path ending in .gguf (or any existing file); a tag
installed in the Ollama store; a catalog tag (its file when `plan-gpus pull` downloaded it, else the
estimate). Refs may carry CrewAI's provider prefix (`ollama/qwen2.5-coder:14b`).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from crew.errors import ModelError
from crew.models.footprint import ModelFootprint

_PROVIDER_PREFIXES = ("ollama/", "ollama_chat/")


def resolve_footprint(ref: str, *, ollama_models_dir: Path | None = None) -> ModelFootprint:
    """Footprint for `ref`; ModelError (with close catalog names) when nothing knows it."""
    from crew.models import catalog, ollama_store
    from crew.models.embedded import EMBEDDED_REFS, embedded_model_path

    tag = strip_provider(ref)
    if not tag:
        raise ModelError("empty model reference", where="model", fix="name a .gguf file or a model tag")
    if tag in EMBEDDED_REFS:
        return _read_file(embedded_model_path(tag), name=tag)
    path = Path(tag).expanduser()
    if tag.lower().endswith(".gguf") or path.is_file():
        return _read_file(path, name=None)
    installed = ollama_store.read_installed(tag, ollama_models_dir)
    if installed is not None:
        return installed
    if catalog.lookup(tag) is not None:
        from crew.models.sources import downloaded

        fetched = downloaded(tag)  # `plan-gpus pull` put its GGUF in the cache: its header, not an estimate
        return _read_file(fetched, name=tag) if fetched is not None else catalog.catalog_footprint(tag)
    raise ModelError(f"unknown model {ref!r}: not a file, not installed in Ollama, not in the catalog",
                     where="model", fix=_suggestion(tag, catalog.catalog_tags()))


def strip_provider(ref: str) -> str:
    ref = ref.strip()
    for prefix in _PROVIDER_PREFIXES:
        if ref.lower().startswith(prefix):
            return ref[len(prefix):]
    return ref


def _read_file(path: Path, *, name: str | None) -> ModelFootprint:
    from crew.models.gguf import read_gguf

    return read_gguf(path, name=name)


def _suggestion(tag: str, known: list[str]) -> str:
    close = difflib.get_close_matches(tag.lower(), [k.lower() for k in known], n=3, cutoff=0.5)
    by_lower = {k.lower(): k for k in known}
    if close:
        return "did you mean " + ", ".join(by_lower[c] for c in close) + "? (or `ollama pull` it first)"
    bases = sorted({k.split(":")[0] for k in known})
    return "pull it with `ollama pull`, pass a .gguf path, or use a catalog model: " + ", ".join(bases)
