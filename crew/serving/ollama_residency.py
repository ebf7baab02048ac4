"""Is every model wholly on its GPU? The pure comparison behind Ollama's `/api/ps`.

For each loaded model Ollama reports `size` (everything the model occupies: weights, KV cache, compute
buffers) and `size_vram` (the part of that on the GPU). Any gap is a CPU spill: those layers run from system
RAM, and every token waits for them, so a plan that looked right on paper runs several times slower without
any error. This module turns the rows into problems a user can act on; it does no IO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crew import units

SPILL_FIX = ("use a smaller quant, a shorter num_ctx, or kv_type: q8_0 (half the KV cache of f16) "
             "for the agents on this GPU")


@dataclass(frozen=True)
class Residency:
    """One row of `/api/ps`: a loaded model and where its bytes are."""

    model: str
    size_bytes: int
    size_vram_bytes: int
    context_length: int | None = None   # older Ollama versions do not report it

    @property
    def spilled_bytes(self) -> int:
        """Bytes of the model held in system RAM instead of VRAM (0 when fully resident)."""
        return max(0, self.size_bytes - self.size_vram_bytes)


@dataclass(frozen=True)
class ResidencyProblem:
    model: str
    what: str
    fix: str


def normalize_tag(tag: str) -> str:
    """The name Ollama lists a model under: `Qwen2.5-Coder` → `qwen2.5-coder:latest`.

    Ollama matches names case-insensitively, fills in the `latest` tag and shows library models without
    their registry host and `library/` namespace, so all of those spellings name one model.
    """
    name = tag.strip().lower()
    name = name.removeprefix("registry.ollama.ai/").removeprefix("library/")
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def gib(n_bytes: int) -> str:
    return units.gib(n_bytes, 2)


def residency_problems(loaded: Sequence[Residency], expected: Sequence[str]) -> list[ResidencyProblem]:
    """What is wrong with the loaded models against the ones the plan put on this server (empty: all good)."""
    by_tag = {normalize_tag(row.model): row for row in loaded}
    problems: list[ResidencyProblem] = []
    for tag in expected:
        row = by_tag.get(normalize_tag(tag))
        if row is None:
            # After warm-up with keep_alive=-1 the only way out is eviction: the models did not fit together.
            problems.append(ResidencyProblem(
                tag, "is not loaded: Ollama evicted it to make room, so the models planned for this GPU "
                     "do not fit together",
                f"{SPILL_FIX}, or move one of them to another GPU"))
        elif row.spilled_bytes:
            share = 100 * row.spilled_bytes / row.size_bytes if row.size_bytes else 100.0
            problems.append(ResidencyProblem(
                tag, f"{gib(row.spilled_bytes)} of its {gib(row.size_bytes)} ({share:.0f} %) is in system "
                     f"RAM, only {gib(row.size_vram_bytes)} on the GPU: a CPU spill that slows every token",
                SPILL_FIX))
    return problems
