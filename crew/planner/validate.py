"""`plan-gpus validate`: load a model for real, measure it, and compare with the estimate and the roofline.

Memory: on a GPU, the NVML used-memory delta across load and a warm-up decode (everything the process
allocates, CUDA context included, which is what the plan must hold); on the CPU, the buffers llama.cpp logs
(RSS would also count the Python interpreter and mmap'd pages). Speed: prompt processing of a fixed prompt in
one batch, then one-token decodes. The decoded tokens are the prompt's own, fed back one at a time: decode
cost does not depend on which token is fed, and skipping sampling keeps the figure to the model's own work.

`verdict` and `roofline_pct` are pure; `measure` is the adapter and imports llama_cpp only when called.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from crew.errors import ModelError

if TYPE_CHECKING:
    from crew.monitor.live import LiveNvml
    from crew.planner.vram import RunSettings

MIB = 1024 * 1024
# A fixed, tokenizer-neutral prompt: plain English prose, repeated to the wanted length.
PROMPT = ("The quick brown fox jumps over the lazy dog while the committee reviews the quarterly report "
          "on memory bandwidth, cache behaviour and the cost of moving model weights across the bus. ")
TIGHT_RATIO = 0.10   # under 10 % of the free memory left after loading: "tight"
MIN_HEADROOM = 256 * MIB  # ...or under 256 MiB, whichever is larger (one more context's compute buffer)


def verdict(needed_bytes: int, free_bytes: int) -> str:
    """'fits with headroom', 'tight' or 'does not fit', from what the model takes and what was free."""
    if needed_bytes > free_bytes:
        return "does not fit"
    if free_bytes - needed_bytes < max(TIGHT_RATIO * free_bytes, MIN_HEADROOM):
        return "tight"
    return "fits with headroom"


def roofline_pct(measured_tokens_per_s: float, roofline_tokens_per_s: float | None) -> float | None:
    if not roofline_tokens_per_s:
        return None
    return 100.0 * measured_tokens_per_s / roofline_tokens_per_s


@dataclass(frozen=True)
class Validation:
    model: str
    device: str                  # "cpu" or "GPU N (name)"
    estimate_bytes: int          # the planner's estimate for this device
    measured_bytes: int          # NVML delta (GPU) or llama.cpp buffers (CPU)
    free_bytes: int              # free VRAM / available RAM before loading
    verdict: str
    prompt_tokens: int
    prompt_tokens_per_s: float
    decode_tokens: int
    decode_tokens_per_s: float
    bandwidth_bytes_per_s: float | None
    bandwidth_source: str        # nvml | table | measured (memcpy) | given
    roofline_tokens_per_s: float | None
    roofline_pct: float | None
    ctx_tokens: int

    @property
    def estimate_error_ratio(self) -> float:
        return (self.estimate_bytes - self.measured_bytes) / self.measured_bytes if self.measured_bytes else 0.0


def host_copy_bandwidth(n_bytes: int = 256 * MIB, repeats: int = 3) -> float:
    """Bytes/s moved by one memcpy (read + write), best of `repeats`: a floor for the CPU roofline.

    Decode on the CPU reads weights with several threads; one copy thread underestimates the peak, so a
    roofline % above 100 on the CPU means the host bandwidth figure is low, not that the model beat physics.
    """
    src, dst = bytearray(n_bytes), bytearray(n_bytes)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        dst[:] = src
        best = min(best, time.perf_counter() - t)
    return 2 * n_bytes / best


class Measured(NamedTuple):
    memory_bytes: int           # the NVML delta on a GPU; llama.cpp's logged buffers on the CPU
    prompt_tokens_per_s: float
    decode_tokens_per_s: float
    prompt_tokens: int
    decode_tokens: int


def measure(path: Path, settings: RunSettings, *, gpu: int | None, nvml: LiveNvml | None,
            prompt_tokens: int = 256, decode_tokens: int = 64,
            threads: int | None = None) -> Measured:
    """Load the model and time a prompt and a decode."""
    if gpu is not None:
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA's index = NVML's index
    import llama_cpp  # heavy: only here

    from crew.models.llamacpp import captured_log
    from crew.planner.measured import parse_buffer_log

    used_before = nvml.memory(gpu).used_bytes if gpu is not None and nvml is not None else 0
    n_threads = threads or os.cpu_count() or 1
    with captured_log() as lines:  # the load's log only: the buffers it allocates
        try:
            llm = llama_cpp.Llama(
                model_path=str(path), n_gpu_layers=-1 if gpu is not None else 0,
                split_mode=llama_cpp.LLAMA_SPLIT_MODE_NONE, main_gpu=gpu or 0, use_mmap=False,
                n_ctx=settings.ctx_tokens, n_batch=settings.batch, n_ubatch=settings.ubatch,
                flash_attn=settings.flash_attn, swa_full=settings.swa_full, n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python's "Failed to load model from file"
            raise ModelError(f"llama.cpp could not load the model: {exc}", where=str(path),
                             fix="check the file, or validate on the CPU (omit --gpu)") from None
    try:
        base = llm.tokenize(PROMPT.encode(), add_bos=False)
        tokens = ([llm.token_bos()] + base * (prompt_tokens // len(base) + 1))[:prompt_tokens]
        t = time.perf_counter()
        llm.eval(tokens)
        pp = len(tokens) / (time.perf_counter() - t)
        t = time.perf_counter()
        for tok in tokens[1:decode_tokens + 1]:
            llm.eval([tok])
        tg = decode_tokens / (time.perf_counter() - t)
        if gpu is not None and nvml is not None:
            measured = nvml.memory(gpu).used_bytes - used_before
        else:
            measured = parse_buffer_log("".join(lines)).total_bytes
    finally:
        llm.close()
    return Measured(measured, pp, tg, len(tokens), decode_tokens)
