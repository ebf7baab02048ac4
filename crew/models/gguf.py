"""GGUF header → ModelFootprint, read with the `gguf` package (memory-mapped; the file's own tensor sizes).

Only the header and the tensor-info table are touched: GGUFReader maps the file and builds numpy views over
the tensor data without reading it, so a 40 GB file costs a few milliseconds.
"""

from __future__ import annotations

import re
import struct
from functools import cache
from pathlib import Path
from typing import Any

from crew.errors import ModelError
from crew.models.footprint import ModelFootprint

_BLK = re.compile(r"^blk\.(\d+)\.")

# Architectures whose llama.cpp loader turns `sliding_window` on, with the default layer pattern it uses when
# the header has no `sliding_window_pattern` (src/models/<arch>.cpp: load_swa_pattern(ml, N)). A layer il is
# a sliding-window layer when il % N < N - 1 (llama-hparams.cpp: set_swa_pattern).
SWA_DEFAULT_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "gemma-embedding": 6, "cohere2": 4,
                       "exaone4": 4, "olmo2": 4, "gpt-oss": 2, "llama4": 4}
_GEMMA2_DEFAULT_WINDOW = 4096  # src/models/gemma2.cpp sets it before reading the key

# What a header may say, per `<arch>.` key: ranges no model llama.cpp runs comes near. A value outside is a
# damaged or hostile file — `block_count` 2^31 was a MemoryError, a negative `embedding_length` a negative
# estimate. Keys that may be per-layer arrays are checked element by element.
FIELD_RANGES: dict[str, tuple[int, int]] = {
    "block_count": (1, 4096),
    "embedding_length": (1, 1 << 20),
    "attention.head_count": (0, 1 << 16),
    "attention.head_count_kv": (0, 1 << 16),
    "attention.key_length": (0, 1 << 16),
    "attention.value_length": (0, 1 << 16),
    "attention.key_length_mla": (0, 1 << 16),
    "vocab_size": (0, 1 << 24),
    "context_length": (0, 1 << 30),
    "feed_forward_length": (0, 1 << 24),
    "expert_feed_forward_length": (0, 1 << 24),
    "expert_count": (0, 1 << 16),
    "expert_used_count": (0, 1 << 16),
    "attention.sliding_window": (0, 1 << 30),
    "attention.sliding_window_pattern": (0, 1 << 12),
}
PER_LAYER_FIELDS = frozenset({"attention.head_count", "attention.head_count_kv", "feed_forward_length",
                              "attention.sliding_window_pattern"})  # these may be arrays, one value a layer
_ARCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def read_gguf(path: Path, *, source: str = "gguf", name: str | None = None) -> ModelFootprint:
    """Read a GGUF file's header into a footprint; raise ModelError for a missing, foreign or cut file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("file not found", where=str(path), fix="check the path")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":  # say so plainly, before the reader fails somewhere in numpy
        raise ModelError(f"not a GGUF file (it starts with {magic!r}, a GGUF with b'GGUF')", where=str(path),
                         fix="point at a .gguf model file; a download that saved an error page is a usual cause")
    try:
        reader = _header_reader()(str(path), "r")
    except (ValueError, OSError, IndexError, KeyError, EOFError, struct.error) as exc:
        raise ModelError(f"not a readable GGUF file ({exc.__class__.__name__}: {exc})", where=str(path),
                         fix="re-download the model; a truncated download is the usual cause") from None
    _check_complete(reader, path)
    arch = _field(reader, "general.architecture", "") or ""
    if not arch:
        raise ModelError("the GGUF header has no general.architecture", where=str(path),
                         fix="use a model GGUF (not a LoRA adapter, projector or vocab-only file)")
    if not isinstance(arch, str) or not _ARCH_NAME.fullmatch(arch):
        raise ModelError("general.architecture is not an architecture name", where=str(path),
                         fix="the header is damaged: re-download the model")
    fields = _checked_fields(reader, arch, path)

    def a(key: str, default: Any = None) -> Any:
        return fields.get(key, default) if key in FIELD_RANGES else _field(reader, f"{arch}.{key}", default)

    n_layer = int(a("block_count", 0))
    n_embd = int(a("embedding_length", 0))
    n_head = _max(a("attention.head_count", 0))
    if not (n_layer and n_embd and n_head):
        raise ModelError("the GGUF header lacks block_count, embedding_length or head_count", where=str(path),
                         fix="this architecture is not a transformer llama.cpp can run; pick another model")
    kv_layers = _per_layer(a("attention.head_count_kv", n_head), n_layer)
    head_dim = int(a("attention.key_length", 0) or n_embd // n_head)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    n_vocab = int(a("vocab_size", 0) or (int(tokens.parts[4][0]) if tokens is not None else 0))

    per_layer = [0] * n_layer
    named: dict[str, int] = {}
    embd_type = ""
    other = experts = 0
    for t in reader.tensors:
        n_bytes = int(t.n_bytes)
        m = _BLK.match(t.name)
        if m and int(m.group(1)) < n_layer:
            per_layer[int(m.group(1))] += n_bytes
            experts += n_bytes if "_exps." in t.name else 0
        else:
            named[t.name] = n_bytes
            other += n_bytes
            embd_type = t.tensor_type.name if t.name == "token_embd.weight" else embd_type
    window, swa_layers = _sliding_window(arch, a, n_layer)
    return ModelFootprint(
        name=name or path.name, source=source, architecture=arch, quant=_quant_name(reader),
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=max(kv_layers), head_dim=head_dim,
        n_vocab=n_vocab, n_ctx_train=int(a("context_length", 0) or 0), weights_bytes=sum(per_layer) + other,
        path=str(path), head_dim_v=int(a("attention.value_length", 0) or head_dim),
        n_head_kv_per_layer=kv_layers, n_ff=_max(a("feed_forward_length", 0)),
        n_ff_expert=int(a("expert_feed_forward_length", 0) or 0), n_expert=int(a("expert_count", 0) or 0),
        n_expert_used=int(a("expert_used_count", 0) or 0), sliding_window=window, swa_layers=swa_layers,
        # llama.cpp caches only K under MLA (llama-kv-cache.cpp: has_v = !is_mla): key_length_mla is set
        mla=bool(a("attention.key_length_mla", 0)), layer_weights_bytes=tuple(per_layer),
        token_embd_bytes=named.get("token_embd.weight", 0), token_embd_type=embd_type,
        output_bytes=named.get("output.weight", 0),
        expert_weights_bytes=experts,
    )


@cache
def _header_reader() -> Any:
    """GGUFReader, minus its slow part: it builds one numpy view per array element, which for a 150k-token
    vocabulary takes seconds. Here string arrays are stepped over (only their length is kept: the token
    count) and numeric arrays become one view. Everything else is the stock reader."""
    import gguf
    import numpy as np

    array, string = gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING

    class HeaderReader(gguf.GGUFReader):
        def _get_field_parts(self, orig_offs: int, raw_type: int) -> Any:
            if raw_type != array:
                return super()._get_field_parts(orig_offs, raw_type)
            itype = self._get(orig_offs, np.uint32)
            alen = self._get(orig_offs + 4, np.uint64)
            offs, sub = orig_offs + 12, gguf.GGUFValueType(int(itype[0]))
            if sub == string:
                fmt = ">Q" if self.byte_order == "S" else "<Q"
                for _ in range(int(alen[0])):
                    offs += 8 + struct.unpack_from(fmt, self.data, offs)[0]  # type: ignore[arg-type]
                return offs - orig_offs, [itype, alen], [], [array, string]
            nptype = self.gguf_scalar_to_np.get(sub)
            if nptype is None:  # nested arrays: rare, small; let the stock code walk them
                return super()._get_field_parts(orig_offs, raw_type)
            values = self._get(offs, nptype, int(alen[0]))
            return offs + int(values.nbytes) - orig_offs, [itype, alen, values], [2], [array, sub]

    return HeaderReader


def _check_complete(reader: Any, path: Path) -> None:
    """GGUFReader maps tensors lazily, so a truncated file can parse; its last tensor then ends past EOF."""
    size = path.stat().st_size
    for t in reader.tensors:
        if int(t.data_offset) + int(t.n_bytes) > size:
            raise ModelError(f"truncated: tensor {t.name} ends past the end of the file ({size} bytes)",
                             where=str(path), fix="re-download the model")


def _checked_fields(reader: Any, arch: str, path: Path) -> dict[str, Any]:
    """The numeric header fields the footprint uses, each a whole number (or a non-empty array of them)
    within FIELD_RANGES; anything else is one ModelError naming the file and the key."""
    out: dict[str, Any] = {}
    for key, (low, high) in FIELD_RANGES.items():
        value = _field(reader, f"{arch}.{key}", None)
        if value is None:
            continue
        array = isinstance(value, list)
        items = value if array else [value]
        bad = next((v for v in items if not isinstance(v, int) or not low <= v <= high), None)
        if bad is not None or not items or (array and key not in PER_LAYER_FIELDS):
            shown = "an array" if array and key not in PER_LAYER_FIELDS else _shown(bad) if items else "an empty array"
            raise ModelError(f"header field {arch}.{key} is {shown}, outside {low}..{high}", where=str(path),
                             fix="the file is damaged or not a model llama.cpp can run: re-download it "
                                 "or pick another model")
        out[key] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return out


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, int | float | str | bytes) else type(value).__name__
    return text if len(text) <= 40 else text[:39] + "…"


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    try:
        return f.contents()
    except (ValueError, IndexError, TypeError):  # a malformed field is as good as absent
        return default


def _max(v: Any) -> int:
    return int(max(v)) if isinstance(v, list) else int(v or 0)


def _per_layer(v: Any, n_layer: int) -> tuple[int, ...]:
    if isinstance(v, list):
        return tuple(int(x) for x in v[:n_layer])
    return (int(v),) * n_layer


def _sliding_window(arch: str, a: Any, n_layer: int) -> tuple[int, tuple[bool, ...]]:
    if arch not in SWA_DEFAULT_PATTERN:
        return 0, ()  # e.g. Mistral 7B v0.1 declares a window that llama.cpp's llama loader ignores
    window = int(a("attention.sliding_window", 0) or (_GEMMA2_DEFAULT_WINDOW if arch == "gemma2" else 0))
    if not window:
        return 0, ()
    pattern = a("attention.sliding_window_pattern", None)
    if isinstance(pattern, list):
        return window, tuple(bool(x) for x in pattern[:n_layer])
    n = int(pattern or SWA_DEFAULT_PATTERN[arch])
    return window, tuple(n == 0 or il % n < n - 1 for il in range(n_layer))


def _quant_name(reader: Any) -> str:
    import gguf

    ftype = _field(reader, "general.file_type", None)
    try:
        return gguf.LlamaFileType(int(ftype)).name.removeprefix("MOSTLY_")
    except (TypeError, ValueError, OverflowError):
        kinds = {t.tensor_type.name for t in reader.tensors if len(t.shape) > 1}
        return "+".join(sorted(kinds)) or "unknown"
