"""Locally installed Ollama tags: manifest → model blob → GGUF, without asking a running Ollama.

Ollama keeps `manifests/<registry>/<namespace>/<name>/<tag>` (JSON, OCI-like) and `blobs/sha256-<hex>` under
$OLLAMA_MODELS, by default ~/.ollama/models. The layer whose mediaType is MODEL_MEDIA_TYPE is the GGUF.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from crew.errors import ModelError
from crew.models.footprint import ModelFootprint

MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
DEFAULT_REGISTRY = "registry.ollama.ai"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_models_dir() -> Path:
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def manifest_path(tag: str, models_dir: Path) -> Path | None:
    """Where the manifest of `tag` would be; None when `tag` cannot be an Ollama name.

    Accepted: `name`, `name:tag`, `namespace/name:tag`, `host/namespace/name:tag` (Ollama's own parsing:
    the tag defaults to `latest`, the namespace to `library`, the host to registry.ollama.ai).
    """
    name, _, version = tag.strip().partition(":")
    parts = name.split("/")
    if len(parts) > 3 or not all(_PART.match(p) for p in [*parts, version or "latest"]):
        return None
    host, namespace = DEFAULT_REGISTRY, "library"
    if len(parts) == 3:
        host, namespace = parts[0], parts[1]
    elif len(parts) == 2:
        namespace = parts[0]
    return models_dir / "manifests" / host / namespace / parts[-1] / (version or "latest")


def model_blob(tag: str, models_dir: Path | None = None) -> Path | None:
    """The GGUF blob of an installed tag; None when the tag is not installed here."""
    models_dir = models_dir or default_models_dir()
    manifest = manifest_path(tag, models_dir)
    if manifest is None or not manifest.is_file():
        return None
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8"))["layers"]
        digest = next(layer["digest"] for layer in layers if layer.get("mediaType") == MODEL_MEDIA_TYPE)
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        raise ModelError("the Ollama manifest is unreadable or has no model layer", where=str(manifest),
                         fix=f"re-pull it: `ollama pull {tag}`") from None
    blob = models_dir / "blobs" / str(digest).replace(":", "-", 1)
    if not blob.is_file():
        raise ModelError(f"the manifest names blob {digest}, which is missing",
                         where=str(models_dir / "blobs"), fix=f"re-pull it: `ollama pull {tag}`")
    return blob


def read_installed(tag: str, models_dir: Path | None = None) -> ModelFootprint | None:
    """Footprint of an installed tag, read from its GGUF blob; None when not installed."""
    blob = model_blob(tag, models_dir)
    if blob is None:
        return None
    from crew.models.gguf import read_gguf

    return read_gguf(blob, source="ollama-store", name=tag)
