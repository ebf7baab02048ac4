"""The built-in catalog (catalog.yaml): footprints for tags that are not installed, marked as estimates.

The file gives each model's published architecture and the published file size of each quant. What a file
header would say per tensor is rebuilt from those: the token embedding and output head from their shapes and
the tensor types llama.cpp's quantizer gives them in that mix, the rest spread evenly over the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from crew.errors import ModelError
from crew.models.footprint import ModelFootprint

GB = 1_000_000_000
# Bits per weight of the token embedding and of the output head in each quant mix (llama-quant.cpp:
# token_embd follows the mix's base type; output.weight gets Q6_K in K-quant mixes, Q8_0 in q8_0).
_EMBD_BPW = {"q2_K": 2.625, "q4_K_M": 4.5, "q5_K_M": 5.5, "q6_K": 6.5625, "q8_0": 8.5}
_EMBD_TYPE = {"q2_K": "Q2_K", "q4_K_M": "Q4_K", "q5_K_M": "Q5_K", "q6_K": "Q6_K", "q8_0": "Q8_0"}
_OUTPUT_BPW = {"q2_K": 6.5625, "q4_K_M": 6.5625, "q5_K_M": 6.5625, "q6_K": 6.5625, "q8_0": 8.5}


@dataclass(frozen=True)
class CatalogEntry:
    tag: str
    quant: str
    model: dict[str, Any]

    @property
    def file_bytes(self) -> int:
        return round(float(self.model["sizes_gb"][self.quant]) * GB)


@cache
def _models() -> tuple[dict[str, Any], ...]:
    import yaml

    text = resources.files("crew.models").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["models"])


@cache
def _index() -> dict[str, CatalogEntry]:
    """tag (lower case) → entry. Quant tags first, so an alias never hides one."""
    index: dict[str, CatalogEntry] = {}
    for m in _models():
        for quant in m["sizes_gb"]:
            tag = f"{m['tag_prefix']}-{quant}"
            index[tag.lower()] = CatalogEntry(tag, quant, m)
    for m in _models():
        for alias in m["aliases"]:
            index.setdefault(alias.lower(), CatalogEntry(alias, m["default_quant"], m))
    return index


def catalog_tags() -> list[str]:
    """Every tag the catalog answers for, aliases included, in file order."""
    return [e.tag for e in _index().values()]


def lookup(tag: str) -> CatalogEntry | None:
    return _index().get(tag.strip().lower())


def quant_variants(tag: str) -> list[str]:
    """The quant tags of the same model as `tag`, smallest file first (the tag's own quant included);
    [] for a tag the catalog does not know."""
    entry = lookup(tag)
    if entry is None:
        return []
    m = entry.model
    quants = sorted(m["sizes_gb"], key=lambda q: float(m["sizes_gb"][q]))
    return [f"{m['tag_prefix']}-{q}" for q in quants]


def bigger_models(tag: str) -> list[str]:
    """Tags of the same family (catalog `name`) with more parameters than `tag`'s model, largest first,
    each in the quant its plain tag pulls; [] for a tag the catalog does not know."""
    entry = lookup(tag)
    if entry is None:
        return []
    own = entry.model
    bigger = [m for m in _models() if m["name"] == own["name"] and float(m["params_b"]) > float(own["params_b"])]
    return [f"{m['name']}:{m['size']}" for m in sorted(bigger, key=lambda m: -float(m["params_b"]))]


def catalog_footprint(tag: str) -> ModelFootprint:
    entry = lookup(tag)
    if entry is None:
        raise ModelError(f"{tag!r} is not in the built-in catalog", where="model catalog",
                         fix="use a .gguf path or an installed Ollama tag")
    m, q = entry.model, entry.quant
    n_layer, n_embd, n_vocab = int(m["n_layer"]), int(m["n_embd"]), int(m["n_vocab"])
    total = entry.file_bytes
    embd = round(n_vocab * n_embd * _EMBD_BPW[q] / 8)
    output = 0 if m["tied_embeddings"] else round(n_vocab * n_embd * _OUTPUT_BPW[q] / 8)
    per_layer = (total - embd - output) // n_layer
    swa_pattern = int(m.get("swa_pattern", 0))
    return ModelFootprint(
        name=entry.tag, source="catalog", architecture=m["architecture"], quant=q.upper(),
        n_layer=n_layer, n_embd=n_embd, n_head=int(m["n_head"]), n_head_kv=int(m["n_head_kv"]),
        head_dim=int(m["head_dim"]), n_vocab=n_vocab, n_ctx_train=int(m["n_ctx_train"]), weights_bytes=total,
        path=None, head_dim_v=int(m.get("head_dim_v", 0)), n_ff=int(m["n_ff"]),
        n_ff_expert=int(m.get("n_ff_expert", 0)), n_expert=int(m.get("n_expert", 0)),
        n_expert_used=int(m.get("n_expert_used", 0)), sliding_window=int(m.get("sliding_window", 0)),
        swa_layers=tuple(il % swa_pattern < swa_pattern - 1 for il in range(n_layer)) if swa_pattern else (),
        layer_weights_bytes=(per_layer,) * n_layer, token_embd_bytes=embd, token_embd_type=_EMBD_TYPE[q],
        output_bytes=output,
        expert_weights_bytes=round(per_layer * n_layer * _expert_share(m)),
        citation=f"architecture: {m['config']}; file size: {m['sizes']}",
    )


def parameter_count(m: dict[str, Any]) -> int:
    """Weights implied by the architecture numbers (matrices only; norms and biases are noise)."""
    e, layers, v = int(m["n_embd"]), int(m["n_layer"]), int(m["n_vocab"])
    hd, hkvd = int(m["n_head"]) * int(m["head_dim"]), int(m["n_head_kv"]) * int(m["head_dim"])
    hdv = int(m["n_head"]) * int(m.get("head_dim_v") or m["head_dim"])
    attn = e * hd + e * hkvd + e * int(m["n_head_kv"]) * int(m.get("head_dim_v") or m["head_dim"]) + hdv * e
    embeddings = v * e * (1 if m["tied_embeddings"] else 2)
    return layers * (attn + _ffn_params(m)) + embeddings


def _ffn_params(m: dict[str, Any]) -> int:
    e = int(m["n_embd"])
    if not m.get("n_expert"):
        return 3 * e * int(m["n_ff"])
    ff = int(m.get("n_ff_expert") or m["n_ff"])
    return 3 * e * ff * int(m["n_expert"]) + 3 * e * int(m.get("n_ff_shared", 0)) + e * int(m["n_expert"])


def _expert_share(m: dict[str, Any]) -> float:
    """Fraction of the repeating weights that sit in routed experts (0 for dense models)."""
    if not m.get("n_expert"):
        return 0.0
    e = int(m["n_embd"])
    experts = 3 * e * int(m.get("n_ff_expert") or m["n_ff"]) * int(m["n_expert"])
    embeddings = int(m["n_vocab"]) * e * (1 if m["tied_embeddings"] else 2)
    return experts * int(m["n_layer"]) / (parameter_count(m) - embeddings)
