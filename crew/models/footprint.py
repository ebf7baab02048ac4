"""What a model is, for memory planning: its architecture numbers and the bytes of its weights. Pure data.

Adapters build one of these from a GGUF header (gguf.py), from the Ollama blob store (ollama_store.py) or from
the built-in catalog (catalog.py); the estimator (crew/planner/vram.py) only ever sees this type.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("gguf", "ollama-store", "catalog")


@dataclass(frozen=True)
class ModelFootprint:
    name: str
    source: str                      # one of SOURCES
    architecture: str                # general.architecture, e.g. "llama", "qwen2", "gemma3"
    quant: str                       # e.g. "Q4_K_M"
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int                   # max over layers; per layer in n_head_kv_per_layer
    head_dim: int                    # key head dim
    n_vocab: int
    n_ctx_train: int
    weights_bytes: int               # every tensor in the file, each counted once
    path: str | None = None
    head_dim_v: int = 0              # value head dim; 0: same as head_dim
    n_head_kv_per_layer: tuple[int, ...] = ()
    n_ff: int = 0                    # dense feed-forward width (max over layers)
    n_ff_expert: int = 0             # one expert's feed-forward width; 0: n_ff
    n_expert: int = 0
    n_expert_used: int = 0
    sliding_window: int = 0          # tokens a sliding-window layer sees; 0: no such layers
    swa_layers: tuple[bool, ...] = ()  # True where layer i uses the sliding window
    mla: bool = False                # multi-head latent attention: the K cache row also serves as V
    layer_weights_bytes: tuple[int, ...] = ()  # blk.<i>.* per layer
    token_embd_bytes: int = 0        # token_embd.weight: stays in host memory when offloading
    token_embd_type: str = ""        # its ggml type, e.g. "Q4_K" (whether a tied head gets repacked)
    output_bytes: int = 0            # output.weight; 0 when tied to token_embd
    expert_weights_bytes: int = 0    # *_exps tensors: only n_expert_used/n_expert of them are read per token
    citation: str = ""               # where catalog numbers come from

    @property
    def is_catalog_estimate(self) -> bool:
        """True when the numbers come from the built-in catalog rather than from a file's header."""
        return self.source == "catalog"

    @property
    def value_head_dim(self) -> int:
        return self.head_dim_v or self.head_dim

    @property
    def tied_embeddings(self) -> bool:
        return self.output_bytes == 0

    @property
    def non_repeating_bytes(self) -> int:
        """Token embedding, output head, final norm and the like: everything outside blk.<i>."""
        return self.weights_bytes - sum(self.layer_bytes(i) for i in range(self.n_layer))

    def kv_heads(self) -> tuple[int, ...]:
        return self.n_head_kv_per_layer or (self.n_head_kv,) * self.n_layer

    def is_swa(self, layer: int) -> bool:
        return self.sliding_window > 0 and layer < len(self.swa_layers) and self.swa_layers[layer]

    def layer_bytes(self, layer: int) -> int:
        """Bytes of one repeating layer; spread evenly when the source has no per-layer numbers."""
        if self.layer_weights_bytes:
            return self.layer_weights_bytes[layer]
        repeating = self.weights_bytes - self.token_embd_bytes - self.output_bytes
        return repeating // max(self.n_layer, 1)
