"""`plan-gpus validate MODEL [--gpu N] [--ctx N] [--bandwidth-gbs GBS] [--json]`.

Loads MODEL on GPU N (or on the CPU), measures its memory and speed, and compares them with the planner's
estimate and the bandwidth roofline. llama_cpp is imported only once the model is about to load.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from crew.errors import HardwareError, ModelError, UsageError

if TYPE_CHECKING:
    from crew.monitor.live import LiveNvml
    from crew.planner.validate import Validation


def register(name: str, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.description = ("Load MODEL for real (a .gguf path, an installed Ollama tag or `embedded`), "
                          "measure memory and tokens/s, and compare with the estimate and the roofline.")
    parser.add_argument("model", metavar="MODEL", help="a .gguf path, an installed Ollama tag, or 'embedded'")
    parser.add_argument("--gpu", type=int, metavar="N", help="GPU index (NVML/PCI order); default: the CPU")
    parser.add_argument("--ctx", type=int, default=4096, metavar="N", help="context tokens (default 4096)")
    parser.add_argument("--bandwidth-gbs", type=float, metavar="GBS",
                        help="memory bandwidth in GB/s for the roofline (default: NVML/card table on a GPU, "
                             "a memcpy measurement on the CPU)")
    parser.add_argument("--prompt-tokens", type=int, default=256, metavar="N",
                        help="prompt tokens processed to time prompt processing (default 256)")
    parser.add_argument("--decode-tokens", type=int, default=64, metavar="N",
                        help="tokens generated to time decoding; fewer than --prompt-tokens (default 64)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return lambda ns: run_validate(ns)


def run_validate(ns: argparse.Namespace, nvml: LiveNvml | None = None) -> int:
    from crew.models.resolve import resolve_footprint
    from crew.planner.validate import Validation, measure, roofline_pct, verdict
    from crew.planner.vram import RunSettings, decode_tokens_per_s, estimate

    if not 1 <= ns.decode_tokens < ns.prompt_tokens or ns.prompt_tokens + ns.decode_tokens > ns.ctx:
        raise UsageError("need 1 <= --decode-tokens < --prompt-tokens and their sum within --ctx",
                         where="--prompt-tokens/--decode-tokens", fix="e.g. --prompt-tokens 256 --decode-tokens 64")
    fp = resolve_footprint(ns.model)
    if fp.path is None:
        raise ModelError(f"{ns.model!r} is only known from the catalog; there is no file to load",
                         where="model", fix=_get_it(ns.model))
    settings = RunSettings(ctx_tokens=ns.ctx, device="cpu" if ns.gpu is None else "cuda")
    if ns.gpu is None:
        from crew.hardware.inventory import system_memory
        from crew.planner.validate import host_copy_bandwidth

        device, free = "cpu", system_memory().available_bytes
        given = ns.bandwidth_gbs
        bandwidth, source = (given * 1e9, "given") if given else (host_copy_bandwidth(), "memcpy")
    else:
        nvml, device, free, bandwidth, source = _gpu(ns, nvml)
    from pathlib import Path

    m = measure(Path(fp.path), settings, gpu=ns.gpu, nvml=nvml, prompt_tokens=ns.prompt_tokens,
                decode_tokens=ns.decode_tokens, threads=ns.threads)
    # the KV cache holds the prompt plus half the decoded tokens on average during the decode we timed
    fill = min(1.0, (m.prompt_tokens + m.decode_tokens / 2) / ns.ctx)
    roof = decode_tokens_per_s(fp, settings, bandwidth, kv_fill=fill) if bandwidth else None
    v = Validation(model=ns.model, device=device, estimate_bytes=estimate(fp, settings).total_bytes,
                   measured_bytes=m.memory_bytes, free_bytes=free, verdict=verdict(m.memory_bytes, free),
                   prompt_tokens=m.prompt_tokens, prompt_tokens_per_s=m.prompt_tokens_per_s,
                   decode_tokens=m.decode_tokens, decode_tokens_per_s=m.decode_tokens_per_s,
                   bandwidth_bytes_per_s=bandwidth, bandwidth_source=source, roofline_tokens_per_s=roof,
                   roofline_pct=roofline_pct(m.decode_tokens_per_s, roof), ctx_tokens=ns.ctx)
    if ns.json:
        print(json.dumps({"schema": "localcrew.validate/1", **asdict(v),
                          "estimate_error_ratio": v.estimate_error_ratio}, indent=2))
    else:
        from rich.console import Console

        Console().print(validation_table(v))
    return 0 if v.verdict != "does not fit" else 1


def _gpu(ns: argparse.Namespace, nvml: LiveNvml | None) -> tuple[LiveNvml, str, int, float | None, str]:
    from crew.hardware.nvml import detect
    from crew.monitor.live import PynvmlLive, open_live

    live: LiveNvml = nvml if nvml is not None else PynvmlLive()
    note = open_live(live)
    if note:
        raise HardwareError(f"cannot validate on GPU {ns.gpu}: {note}", where="--gpu",
                            fix="omit --gpu to validate on the CPU")
    found = {g.index: g for g in detect(live).gpus}
    if ns.gpu not in found:
        raise UsageError(f"there is no GPU {ns.gpu}", where="--gpu",
                         fix="use one of " + (", ".join(map(str, sorted(found))) or "none: omit --gpu"))
    g = found[ns.gpu]
    if ns.bandwidth_gbs:
        return live, g.label, g.free_bytes or 0, ns.bandwidth_gbs * 1e9, "given"
    return live, g.label, g.free_bytes or 0, g.bandwidth_bytes_per_s, g.bandwidth_source


# Where the roofline's bandwidth came from, in words: on the CPU it is this machine's RAM, never a GPU's.
_SOURCES = {"memcpy": "this machine's RAM, one-thread memcpy", "nvml": "GPU, NVML bus x clock",
            "table": "GPU, card table", "given": "--bandwidth-gbs"}


def validation_table(v: Validation) -> object:
    from rich.table import Table

    from crew.units import gib
    t = Table(title=f"validate {v.model} on {v.device}: {v.verdict}", show_header=False)
    t.add_column(justify="left")
    t.add_column(justify="right")
    err = f" ({100 * v.estimate_error_ratio:+.1f} %)" if v.measured_bytes else ""
    rows = [
        ("memory measured", gib(v.measured_bytes, 3)),
        ("memory estimated", gib(v.estimate_bytes, 3) + err),
        ("free before load", gib(v.free_bytes, 2)),
        (f"prompt processing ({v.prompt_tokens} tokens)", f"{v.prompt_tokens_per_s:.1f} tok/s"),
        (f"decode ({v.decode_tokens} tokens)", f"{v.decode_tokens_per_s:.1f} tok/s"),
        (f"bandwidth ({_SOURCES.get(v.bandwidth_source, v.bandwidth_source)})",
         f"{v.bandwidth_bytes_per_s / 1e9:.1f} GB/s" if v.bandwidth_bytes_per_s else "unknown"),
        ("decode roofline (bandwidth bound, not measured)",
         f"{v.roofline_tokens_per_s:.1f} tok/s" if v.roofline_tokens_per_s else "unknown"),
        ("roofline reached", f"{v.roofline_pct:.0f} %" if v.roofline_pct is not None else "unknown"),
    ]
    for k, val in rows:
        t.add_row(k, val)
    return t


def _get_it(ref: str) -> str:
    """A command that works as printed: Ollama's tags have no `ollama/` prefix."""
    from crew.models.resolve import strip_provider

    tag = strip_provider(ref)
    return (f"`plan-gpus pull` (for the plan's models), `ollama pull {tag}`, or pass a .gguf path "
            "(`plan-gpus validate path/to/model.gguf`)")
