"""`plan-gpus estimate MODEL`: what one instance of a model occupies under llama.cpp, term by term.

MODEL is a .gguf path, an Ollama tag installed locally, a catalog tag, or `embedded`. Imports stay light
(no crewai, litellm or llama_cpp): the GGUF reader pulls in numpy only when a file is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from crew.errors import SettingsError
from crew.models.footprint import ModelFootprint
from crew.planner.vram import GPU_KV_TYPE, KV_TYPES, RunSettings, VramEstimate, decode_tokens_per_s, estimate

CATALOG_NOTE = ("catalog estimate: architecture from the published config, "
                "weights from the published file size")


def register(name: str, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.description = __doc__.splitlines()[0] if __doc__ else None
    parser.add_argument("model", help="a .gguf path, an installed Ollama tag, a catalog tag, or 'embedded'")
    parser.add_argument("--ctx", type=int, default=4096,
                        help="context tokens per parallel slot (default 4096)")
    parser.add_argument("--parallel", type=int, default=1, help="parallel slots (default 1)")
    parser.add_argument("--kv-type", choices=sorted(KV_TYPES), default=None,
                        help=f"KV cache type (default {GPU_KV_TYPE} on cuda, as the planner; f16 on cpu)")
    parser.add_argument("--flash-attn", action=argparse.BooleanOptionalAction, default=True,
                        help="flash attention (default on; quantized KV types need it)")
    parser.add_argument("--batch", type=int, default=2048, help="logical batch size (default 2048)")
    parser.add_argument("--ubatch", type=int, default=512, help="physical micro-batch size (default 512)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda",
                        help="where it runs (default cuda)")
    parser.add_argument("--gpu-layers", type=int, default=None, help="layers offloaded (default all)")
    parser.add_argument("--bandwidth-gbs", type=float, default=None,
                        help="memory bandwidth in GB/s, to predict decode tokens/s (roofline)")
    parser.add_argument("--allow-ctx-overflow", action="store_true",
                        help="allow a context above the model's trained context (RoPE scaling)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return run


def run(ns: argparse.Namespace) -> int:
    import time

    from crew.models.resolve import resolve_footprint

    if ns.bandwidth_gbs is not None and ns.bandwidth_gbs <= 0:
        raise SettingsError("--bandwidth-gbs must be positive", where="plan-gpus estimate",
                            fix="pass the GPU's memory bandwidth, e.g. 360 for an RTX 3060")
    started = time.perf_counter()
    fp = resolve_footprint(ns.model)
    kv_type = ns.kv_type or (GPU_KV_TYPE if ns.device == "cuda" else "f16")
    settings = RunSettings(ctx_tokens=ns.ctx, parallel=ns.parallel, kv_type=kv_type,
                           flash_attn=ns.flash_attn, batch=ns.batch, ubatch=ns.ubatch, device=ns.device,
                           n_gpu_layers=ns.gpu_layers, allow_ctx_over_train=ns.allow_ctx_overflow)
    est = estimate(fp, settings)
    tps = None if ns.bandwidth_gbs is None else decode_tokens_per_s(fp, settings, ns.bandwidth_gbs * 1e9)
    elapsed = time.perf_counter() - started
    if ns.json:
        print(json.dumps(to_json(fp, settings, est, tps, elapsed)))
    else:
        from rich.console import Console

        Console().print(breakdown_table(fp, settings, est, tps))
    return 0


def to_json(fp: ModelFootprint, s: RunSettings, est: VramEstimate, tokens_per_s: float | None,
            elapsed_s: float) -> dict[str, Any]:
    return {
        "model": fp.name, "source": fp.source, "catalog_estimate": fp.is_catalog_estimate,
        "note": CATALOG_NOTE if fp.is_catalog_estimate else None, "citation": fp.citation or None,
        "path": fp.path, "architecture": fp.architecture, "quant": fp.quant,
        "n_layer": fp.n_layer, "n_embd": fp.n_embd, "n_head": fp.n_head, "n_head_kv": fp.n_head_kv,
        "head_dim": fp.head_dim, "n_vocab": fp.n_vocab, "n_ctx_train": fp.n_ctx_train,
        "n_expert": fp.n_expert, "n_expert_used": fp.n_expert_used, "sliding_window": fp.sliding_window,
        "ctx": s.ctx_tokens, "parallel": s.parallel, "kv_type": s.kv_type, "flash_attn": s.flash_attn,
        "batch": s.batch, "ubatch": s.ubatch, "device": s.device, "n_gpu_layers": s.n_gpu_layers,
        **asdict(est), "decode_tokens_per_s": tokens_per_s, "estimate_seconds": round(elapsed_s, 4),
    }


def breakdown_table(fp: ModelFootprint, s: RunSettings, est: VramEstimate, tokens_per_s: float | None) -> Any:
    from rich.table import Table

    where = "VRAM" if s.device == "cuda" else "RAM"
    title = f"{fp.name} ({fp.architecture}, {fp.quant}) — {where} for ctx {s.ctx_tokens} × {s.parallel}, " \
            f"KV {s.kv_type}, flash-attn {'on' if s.flash_attn else 'off'}"
    caption = f"[yellow]{CATALOG_NOTE}[/]" if fp.is_catalog_estimate else f"read from {fp.source}: {fp.path}"
    table = Table(title=title, caption=caption, min_width=76, title_justify="left", caption_justify="left")
    table.add_column("component")
    table.add_column("size", justify="right")
    rows = [("weights", est.weights_bytes), ("KV cache", est.kv_cache_bytes),
            ("compute buffer", est.compute_bytes), ("output buffer", est.output_bytes),
            ("runtime overhead", est.overhead_bytes)]
    for label, n in rows:
        table.add_row(label, human_bytes(n))
    table.add_row("[bold]total[/]", f"[bold]{human_bytes(est.total_bytes)}[/]")
    if est.host_bytes:
        table.add_row("[dim]host memory besides[/]", f"[dim]{human_bytes(est.host_bytes)}[/]")
    if tokens_per_s is not None:
        table.add_row("decode (roofline, KV half full)", f"{tokens_per_s:.1f} tok/s")
    return table


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


if __name__ == "__main__":  # pragma: no cover
    from crew.cli import main

    sys.exit(main(["estimate", *sys.argv[1:]]))
