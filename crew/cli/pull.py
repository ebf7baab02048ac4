"""`plan-gpus pull [--layout FILE | --profile NAME] [--agents FILE] [--dry-run]`: get every planned model.

For the plan's backend (`backend: auto` says which it picked): Ollama tags through the Ollama API (a bar
per layer); for llama.cpp, the GGUF from the Ollama store when it is there, else from Hugging Face by the
catalog's repository and file (a bar per file, resumable, size and sha256 checked), into the user's cache
where the planner and the servers find it. Exit 0 when every planned model is here, 1 when a source could
not be reached (each such line gives the command to run elsewhere), 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crew.errors import LocalcrewError
from crew.units import gib

OLLAMA_DEFAULT = "http://127.0.0.1:11434"
MAX_ROUNDS = 4


def register(name: str, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    from crew.cli.plan import add_plan_inputs

    parser.description = ("Download every model the plan uses, for its backend: Ollama tags through Ollama; "
                          "GGUF files for llama.cpp from the Ollama store or Hugging Face.")
    add_plan_inputs(parser)
    parser.add_argument("--dry-run", action="store_true", help="say what would be fetched, fetch nothing")
    parser.add_argument("--ollama-url", metavar="URL",
                        help=f"the Ollama server to pull through (default: $OLLAMA_HOST or {OLLAMA_DEFAULT})")
    parser.add_argument("--hf-endpoint", metavar="URL",
                        help="Hugging Face endpoint or mirror (default: $HF_ENDPOINT or https://huggingface.co)")
    return run_pull


@dataclass(frozen=True)
class Outcome:
    model: str
    state: str   # present | fetched | would fetch | unreachable | failed
    detail: str


def run_pull(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from crew.cli.plan import plan_inputs
    from crew.models.resolve import strip_provider
    from crew.planner.build import plan_for

    agents, layout = plan_inputs(ns)
    console = Console(highlight=False, soft_wrap=True)
    outcomes: list[Outcome] = []
    # A fetched file replaces a catalog estimate with the file's own header, which can change the plan (a
    # model that looked too big fits): plan again, and fetch what the new plan adds, until nothing changes.
    for rounds in range(MAX_ROUNDS):
        plan = plan_for(agents, layout, profile=ns.profile)
        if rounds == 0:
            for note in plan.notes:
                if note.startswith("backend"):
                    console.print(f"[yellow]note:[/] {note}")
        done = {o.model for o in outcomes}
        refs = [r for r in dict.fromkeys(strip_provider(a.model) for a in plan.agents if a.placement != "api")
                if r not in done]
        if rounds and refs:
            console.print(f"with the real files the plan now also uses: {', '.join(refs)}")
        new = (_pull_ollama(refs, ns, console) if plan.backend == "ollama"
               else [_pull_gguf(ref, ns, console) for ref in refs])
        for o in new:
            style = {"present": "green", "fetched": "green", "would fetch": "cyan"}.get(o.state, "red")
            console.print(f"[{style}]{o.state:>11}[/] {o.model}: {o.detail}")
        outcomes += new
        if not any(o.state == "fetched" for o in new):
            break
    if not outcomes:
        console.print("no model to pull: every agent is on an API endpoint")
        return 0
    bad = [o for o in outcomes if o.state in ("unreachable", "failed")]
    if bad:
        print(f"plan-gpus pull: {len(bad)} of {len(outcomes)} model(s) not here", file=sys.stderr)
        return 1
    return 0


def _pull_gguf(ref: str, ns: argparse.Namespace, console: Any) -> Outcome:
    """One model for llama.cpp: a file, the embedded model, the Ollama store, the cache, or Hugging Face."""
    from crew.models import ollama_store
    from crew.models.embedded import EMBEDDED_REFS, embedded_model_path
    from crew.models.sources import HF_ENDPOINT, cached_path, hf_file

    if ref in EMBEDDED_REFS:
        return Outcome(ref, "present", f"ships with localcrew ({embedded_model_path(ref)})")
    path = Path(ref).expanduser()
    if ref.lower().endswith(".gguf") or path.is_file():
        if path.is_file():
            return Outcome(ref, "present", "a file of yours")
        return Outcome(ref, "failed", "file not found — a path cannot be pulled: fix the path in agents.yaml")
    installed = ollama_store.read_installed(ref, None)
    if installed is not None and installed.path:
        return Outcome(ref, "present", f"in the Ollama store ({installed.path})")
    source = hf_file(ref)
    if source is None:
        return Outcome(ref, "failed", "not in the catalog, so no download source is known — give a .gguf path "
                                      "in agents.yaml, or pull it with Ollama")
    dest = cached_path(source)
    if dest.is_file():
        return Outcome(ref, "present", f"downloaded before ({dest})")
    url = source.url(ns.hf_endpoint or os.environ.get("HF_ENDPOINT") or HF_ENDPOINT)
    if ns.dry_run:
        return Outcome(ref, "would fetch", f"{url} → {dest} (about {gib(source.approx_bytes)})")
    return _fetch(ref, url, dest, source.approx_bytes, console)


def _fetch(ref: str, url: str, dest: Path, approx_bytes: int, console: Any) -> Outcome:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from crew.errors import NetworkError
    from crew.models.download import fetch

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(dest.name, total=approx_bytes)

        def on_bytes(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total or approx_bytes)

        try:
            fetch(url, dest, on_bytes=on_bytes)
        except NetworkError as err:
            return Outcome(ref, "unreachable", err.one_line())
        except LocalcrewError as err:
            return Outcome(ref, "failed", err.one_line())
    return Outcome(ref, "fetched", f"{dest} (size and sha256 checked)")


def _pull_ollama(refs: list[str], ns: argparse.Namespace, console: Any) -> list[Outcome]:
    """Tags through a running Ollama server's /api/pull (a bar per layer); files and embedded refs as above."""
    import httpx
    from rich.progress import Progress

    from crew.serving.ollama import ensure_pulled, installed_tags, normalize_tag

    tags = [r for r in refs if not r.lower().endswith(".gguf") and not Path(r).expanduser().is_file()]
    out = [Outcome(r, "present", "a file of yours") for r in refs if r not in tags]
    base = ns.ollama_url or _ollama_url()
    try:
        have = {normalize_tag(t) for t in installed_tags(base)}
    except (OSError, httpx.HTTPError, LocalcrewError) as err:  # refused, timed out, not an Ollama
        why = err.what if isinstance(err, LocalcrewError) else (str(err).splitlines() or ["unreachable"])[0]
        cmds = "; ".join(f"ollama pull {t}" for t in tags)
        return out + [Outcome(t, "unreachable", f"cannot reach Ollama at {base} ({why[:80]}) — start it with "
                                                f"`ollama serve`, or run: {cmds}") for t in tags]
    if ns.dry_run:
        return out + [Outcome(t, "present" if normalize_tag(t) in have else "would fetch", f"through {base}")
                      for t in tags]
    try:
        with Progress(console=console, transient=True) as progress:
            pulled = set(ensure_pulled(base, tags, progress=progress))
    except LocalcrewError as err:
        return out + [Outcome(t, "failed", err.one_line()) for t in tags]
    return out + [Outcome(t, "fetched" if t in pulled else "present", f"through {base}") for t in tags]


def _ollama_url() -> str:
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return OLLAMA_DEFAULT
    return host if "://" in host else f"http://{host}"
