"""The Ollama backend: one pinned `ollama serve` per GPU, its models pulled, loaded and checked resident.

`ollama_spec` and `compatible` are pure. The rest talks to a running server through the `ollama` client
(imported lazily: `plan-gpus` builds specs without paying for httpx and pydantic). The order of a start is
start_server → ensure_pulled → warm_up_all → check_residency; `prepare_servers` runs the last three.

Ollama settings are per server, not per model: context length, parallel slots, KV cache type and flash
attention apply to every model the server loads. Agents reach it through `/v1/chat/completions`, which
cannot carry `num_ctx`, so each model must be loaded with the server's own context length — otherwise the
first agent request would reload it at a different size (see docs/ollama.md).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from crew.errors import LocalcrewError, ModelError, ServingError, SettingsError
from crew.models.llamacpp import KV_TYPES as LLAMACPP_KV_TYPES
from crew.serving.ollama_residency import Residency, normalize_tag, residency_problems
from crew.serving.spec import OLLAMA, LaunchSpec, ServedModel

if TYPE_CHECKING:
    import ollama
    from rich.progress import Progress, TaskID

    from crew.serving.process import RunningServer

DOWNLOAD_URL = "https://ollama.com/download"
LIBRARY_URL = "https://ollama.com/library"
KV_TYPES = tuple(LLAMACPP_KV_TYPES)  # Ollama passes llama.cpp's cache types through
# What decides where and how a server runs its models: a server differing in any of these is not reusable.
PINNING_KEYS = (
    "CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES", "OLLAMA_HOST", "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_NUM_PARALLEL", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_KEEP_ALIVE", "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_FLASH_ATTENTION", "OLLAMA_MODELS",
)
# Go's net errors as Ollama relays them when the registry cannot be reached.
_OFFLINE_MARKS = ("dial tcp", "no such host", "lookup ", "network is unreachable", "i/o timeout",
                  "connection refused", "connection reset", "tls handshake", "max retries exceeded",
                  "context deadline exceeded", "server misbehaving", "temporary failure in name resolution")
_UNKNOWN_MARKS = ("file does not exist", "not found", "manifest unknown", "does not exist")


# ------------------------------------------------------------------------------------------------ pure


def ollama_spec(server_id: str, models: tuple[ServedModel, ...], port: int, *, gpu_uuid: str | None,
                num_parallel: int, kv_type: str, flash_attn: bool, models_dir: str | None,
                simulated: bool = False, ollama_bin: str = "ollama") -> LaunchSpec:
    """`ollama serve` on 127.0.0.1:port, pinned to one GPU by UUID (none, or simulated: the CPU)."""
    where = f"server {server_id} (backend: ollama)"
    if not models:
        raise ValueError("a server needs at least one model")
    contexts = sorted({m.ctx_tokens for m in models})
    if len(contexts) > 1:
        raise SettingsError(
            f"models {', '.join(m.alias for m in models)} share one Ollama server but ask for different "
            f"context lengths {contexts}; Ollama has one context length per server",
            where=where,
            fix="give the agents on this GPU the same num_ctx in agents.yaml, or use backend: llamacpp")
    if kv_type not in KV_TYPES:
        raise SettingsError(f"unknown KV cache type {kv_type!r}", where=where,
                            fix=f"use one of {', '.join(KV_TYPES)}")
    if kv_type != "f16" and not flash_attn:
        # Ollama silently falls back to f16 without flash attention: the plan's KV budget would be wrong.
        raise SettingsError(f"a {kv_type} KV cache needs flash attention", where=where,
                            fix="enable flash attention or use kv_type: f16")
    if num_parallel < 1:
        raise ValueError(f"num_parallel must be at least 1, got {num_parallel}")
    on_cpu = simulated or gpu_uuid is None
    env = {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        # Ollama's documented way to hide every GPU is an invalid id; an empty value is not reliable there.
        "CUDA_VISIBLE_DEVICES": "-1" if on_cpu else str(gpu_uuid),
        "OLLAMA_CONTEXT_LENGTH": str(contexts[0]),
        "OLLAMA_NUM_PARALLEL": str(num_parallel),
        "OLLAMA_MAX_LOADED_MODELS": str(len({normalize_tag(m.alias) for m in models})),
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_KV_CACHE_TYPE": kv_type,
        "OLLAMA_FLASH_ATTENTION": "1" if flash_attn else "0",
        # `ollama serve` prunes unreferenced blobs at start; with several servers on one store, a restart
        # would delete the partial download of a pull running in another server.
        "OLLAMA_NOPRUNE": "1",
    }
    if models_dir is not None:
        env["OLLAMA_MODELS"] = models_dir
    # OLLAMA_HOST is rendered from the port (LaunchSpec.env), so a spec moved to another port stays right.
    return LaunchSpec(server_id=server_id, backend="ollama", program=(ollama_bin,), engine=OLLAMA, extra_env=env,
                      port=port,
                      log_name=f"{server_id}.log", models=models,
                      gpu_uuids=(gpu_uuid,) if gpu_uuid and not simulated else (), simulated=simulated,
                      planned_pinning=gpu_uuid if simulated and gpu_uuid else "")


def compatible(spec: LaunchSpec, observed: Mapping[str, str] | None) -> str | None:
    """Why the server already on spec's port must not be reused for spec; None when it may.

    `observed` is the environment recorded when localcrew started that server (the supervisor's state
    file). Another process's environment cannot be read, so a server with no record is never reused.
    """
    if observed is None:
        return (f"an Ollama server localcrew did not start already listens on {spec.bind_address}:{spec.port}; "
                "its GPU pinning cannot be checked")
    keys = sorted(set(spec.env) | (set(observed) & set(PINNING_KEYS)))
    diffs = [f"{k}={observed.get(k)!r} there, {spec.env.get(k)!r} planned"
             for k in keys if observed.get(k) != spec.env.get(k)]
    if not diffs:
        return None
    return f"the server on {spec.bind_address}:{spec.port} runs with a different pinning: " + "; ".join(diffs)


def classify_pull_error(message: str) -> Literal["offline", "unknown", "other"]:
    text = message.lower()
    if any(mark in text for mark in _OFFLINE_MARKS):
        return "offline"
    if any(mark in text for mark in _UNKNOWN_MARKS):
        return "unknown"
    return "other"


# ------------------------------------------------------------------------------------------- processes


def require_binary(ollama_bin: str = "ollama", *, which: Callable[[str], str | None] = shutil.which) -> str:
    """The path of the `ollama` executable, or an error that says how to get it."""
    found = which(ollama_bin)
    if found is None:
        what = (f"the `{ollama_bin}` command is not installed (not on PATH)" if "/" not in ollama_bin
                else f"no Ollama executable at {ollama_bin}")
        raise ServingError(what, where="gpu_layout.yaml: backend: ollama",
                           fix=f"install Ollama from {DOWNLOAD_URL} (Linux: `curl -fsSL https://ollama.com/"
                               "install.sh | sh`), or set `backend: llamacpp` in gpu_layout.yaml")
    return found


def start_server(spec: LaunchSpec, state_dir: Path, *, timeout_s: float = 60.0) -> RunningServer:
    """Start one `ollama serve` and wait until it answers `/api/tags` (models load later, in warm-up)."""
    from crew.serving import process

    require_binary(spec.argv[0])
    server = process.start(spec, state_dir)
    try:
        process.wait_healthy(server, timeout_s=timeout_s)
    except ServingError as exc:
        # An Ollama server answers before any model loads, so a slow start is never "the model is big".
        raise ServingError(exc.what, where=exc.where,
                           fix="read its log: a GPU driver that does not answer or a port taken by another "
                               f"program are the usual causes; last lines:\n{process.tail(server.log_path)}",
                           ) from None
    return server


# ------------------------------------------------------------------------------------------ the client


@contextlib.contextmanager
def _client(base_url: str, timeout_s: float) -> Iterator[ollama.Client]:
    import httpx
    import ollama

    # trust_env=False: servers are on loopback; an HTTP(S)_PROXY from the user's shell must not catch them.
    timeout = httpx.Timeout(timeout_s, connect=5.0)
    with ollama.Client(host=base_url, timeout=timeout, trust_env=False) as client:
        try:
            yield client
        except httpx.TimeoutException:
            raise ServingError(f"Ollama at {base_url} did not reply within {timeout_s:.0f} s",
                               where=f"server {base_url}",
                               fix="read the server's log (in the run's state folder)") from None
        except (ConnectionError, httpx.TransportError) as exc:
            raise ServingError(f"Ollama at {base_url} cannot be reached ({type(exc).__name__})",
                               where=f"server {base_url}",
                               fix="check that the server is running (its log is in the run's state folder)"
                               ) from None


def version(base_url: str) -> str:
    """The server's Ollama version (`/api/version`); also proves that it is an Ollama listening there."""
    import httpx

    try:
        answer = httpx.get(f"{base_url}/api/version", timeout=5.0, trust_env=False)
        answer.raise_for_status()
        reply = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServingError(f"no Ollama answers at {base_url} ({exc})", where=f"server {base_url}",
                           fix="stop what listens on that port, or change base_port in gpu_layout.yaml",
                           ) from None
    if not isinstance(reply, dict) or not isinstance(reply.get("version"), str):
        raise ServingError(f"the server at {base_url} is not Ollama (no version in /api/version)",
                           where=f"server {base_url}", fix="change base_port in gpu_layout.yaml")
    return str(reply["version"])


def installed_tags(base_url: str) -> list[str]:
    with _client(base_url, 30.0) as client:
        return [m.model for m in client.list().models if m.model]


def ensure_pulled(base_url: str, tags: Sequence[str], *, progress: Progress | None,
                  timeout_s: float = 300.0) -> list[str]:
    """Pull the tags the server's store lacks, one progress bar per layer. Returns the tags pulled.

    All servers share one store (OLLAMA_MODELS), so pulling through one server serves them all.
    `timeout_s` bounds the wait for each progress line, not the whole download.
    """
    import ollama

    present = installed_tags(base_url)
    have = {normalize_tag(t) for t in present}
    wanted: dict[str, str] = {}            # one pull per model, however its tag is spelled
    for tag in tags:
        if normalize_tag(tag) not in have:
            wanted.setdefault(normalize_tag(tag), tag)
    missing = list(wanted.values())
    for tag in missing:
        bars: dict[str, tuple[TaskID, int | None]] = {}
        try:
            with _client(base_url, timeout_s) as client:
                for part in client.pull(tag, stream=True):
                    if progress is not None and part.digest:
                        _show_layer(progress, bars, tag, part.digest, part.total, part.completed)
        except ollama.ResponseError as exc:
            raise _pull_error(tag, exc.error, present) from None
        if progress is not None:
            for task, total in bars.values():   # a layer already on disk may never report its last bytes
                progress.update(task, completed=total or 1, total=total or 1)
    return missing


def _show_layer(progress: Progress, bars: dict[str, tuple[TaskID, int | None]], tag: str, digest: str,
                total: int | None, completed: int | None) -> None:
    if digest not in bars:
        task = progress.add_task(f"{tag} {digest.removeprefix('sha256:')[:12]}", total=total or None)
        bars[digest] = (task, total or None)
    task, known = bars[digest]
    bars[digest] = (task, total or known)
    progress.update(task, total=total or known, completed=completed or 0)


def _pull_error(tag: str, message: str, present: Sequence[str]) -> LocalcrewError:
    kind = classify_pull_error(message)
    where = f"model {tag!r}"
    if kind == "unknown":
        return ModelError(f"Ollama's library has no model {tag!r} ({message})", where=where,
                          fix=f"check the name and tag at {LIBRARY_URL} and correct `llm:` in agents.yaml")
    choices = ", ".join(present) if present else "none"
    if kind == "offline":
        return ServingError(
            f"cannot download {tag!r}: the Ollama registry is unreachable (offline?)", where=where,
            fix=f"connect and run again, or run `ollama pull {tag}` on a connected machine and copy its "
                f"models folder into OLLAMA_MODELS, or use a model already present: {choices}")
    return ServingError(f"pulling {tag!r} failed: {message}", where=where,
                        fix=f"run `ollama pull {tag}` by hand to see the full error")


def warm_up(base_url: str, model: str, num_ctx: int, *, timeout_s: float = 600.0) -> float:
    """Load `model` now, for good (keep_alive=-1), at the server's context length. Returns seconds taken."""
    import ollama

    started = time.monotonic()
    try:
        with _client(base_url, timeout_s) as client:
            # An empty prompt loads the model without generating (docs/api.md, "Load a model").
            client.generate(model=model, prompt="", keep_alive=-1, options={"num_ctx": num_ctx})
    except ollama.ResponseError as exc:
        if exc.status_code == 404:
            raise ModelError(f"{model!r} is not in the server's model store", where=f"server {base_url}",
                             fix=f"pull it first (`ollama pull {model}`)") from None
        raise ServingError(f"Ollama could not load {model!r} with num_ctx {num_ctx}: {exc.error}",
                           where=f"server {base_url}",
                           fix="a smaller quant, a shorter num_ctx or kv_type: q8_0 needs less memory",
                           ) from None
    return time.monotonic() - started


def warm_up_all(specs: Sequence[LaunchSpec], *, progress: Progress | None,
                timeout_s: float = 600.0) -> dict[tuple[str, str], float]:
    """Load every model of every server: servers in parallel, each server's models one after the other
    (Ollama loads one model at a time anyway). Returns seconds per (server_id, model)."""
    def one_server(spec: LaunchSpec) -> dict[tuple[str, str], float]:
        took: dict[tuple[str, str], float] = {}
        for m in spec.models:
            task = (progress.add_task(f"{spec.server_id}: loading {m.alias}", total=None)
                    if progress is not None else None)
            took[(spec.server_id, m.alias)] = seconds = warm_up(
                spec.base_url, m.alias, m.ctx_tokens,
                timeout_s=timeout_s)
            if progress is not None and task is not None:
                progress.update(task, total=1, completed=1,
                                description=f"{spec.server_id}: {m.alias} loaded in {seconds:.1f} s")
        return took

    results: dict[tuple[str, str], float] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(specs)), thread_name_prefix="ollama-warm-up") as pool:
        futures = [pool.submit(one_server, spec) for spec in specs]
        # Wait for all before raising, so no load is left running behind the error.
        errors = [f.exception() for f in futures]
        for future, error in zip(futures, errors, strict=True):
            if error is not None:
                raise error
            results.update(future.result())
    return results


def residency(base_url: str) -> list[Residency]:
    """The loaded models and where their bytes are (`/api/ps`)."""
    with _client(base_url, 30.0) as client:
        return [Residency(model=m.model or m.name or "?", size_bytes=int(m.size or 0),
                          size_vram_bytes=int(m.size_vram or 0), context_length=m.context_length)
                for m in client.ps().models]


def check_residency(spec: LaunchSpec, *, on_spill: Literal["fail", "warn"] = "fail") -> list[str]:
    """Every model of the server wholly in VRAM, or else an error (fail) or warning lines (warn)."""
    if spec.simulated or not spec.gpu_uuids:
        return []   # a CPU server: nothing is meant to be on a GPU
    problems = residency_problems(residency(spec.base_url), [m.alias for m in spec.models])
    lines = [f"{p.model} on {spec.server_id}: {p.what}" for p in problems]
    if problems and on_spill == "fail":
        raise ServingError("; ".join(lines), where=f"server {spec.server_id} ({spec.base_url}/api/ps)",
                           fix=f"{problems[0].fix} (or accept the slowdown with on_spill: warn)")
    return [f"{line} — fix: {p.fix}" for line, p in zip(lines, problems, strict=True)]


def prepare_servers(specs: Sequence[LaunchSpec], *, progress: Progress | None,
                    on_spill: Literal["fail", "warn"] = "fail") -> list[str]:
    """Pull what is missing (once per model store), load everything, check residency. Returns warnings."""
    by_store: dict[str | None, list[LaunchSpec]] = {}
    for spec in specs:
        by_store.setdefault(spec.env.get("OLLAMA_MODELS"), []).append(spec)
    for group in by_store.values():
        tags = [m.alias for spec in group for m in spec.models]
        ensure_pulled(group[0].base_url, tags, progress=progress)
    warm_up_all(specs, progress=progress)
    return [line for spec in specs for line in check_residency(spec, on_spill=on_spill)]
