"""The slots case: the llama-server this run built, started as the crew starts it, at 1 and at 4 slots.

The server's command line is the crew's own: a plan's agent at `slots` requests, each with `ctx_tokens` of
context, becomes a ServedModel exactly as crew/serving/launch.py makes one (flash attention, the layout's KV
type, batch 2048 / ubatch 512, every layer offloaded), and `llamacpp_spec` renders it (`--parallel N
--ctx-size N×C --no-kv-unified --fit off --cache-ram 0 --log-verbosity 4` ...) on a leased free loopback port;
crew.serving.process's Supervisor starts it, waits until it answers, and stops it on every way out (the
budget's timer stops it too, which ends any request still running).

Its load log's buffers (the GPU's: `CUDA0 ... buffer size`; on the CPU dry run, all of them) are set against
`crew.planner.vram.estimate` at the settings the planner gives a llama-server agent with that many slots
(one logits row per slot), as tests/test_llama_server.py does on the CPU. Then benchmarks/bench_serving.py's
own measurement: 1, then N streamed requests at once of `n_gen` tokens each (end of sequence banned), the
aggregate tokens/s over the wall time from the first send to the last token.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.gpu_check.logparse import LoadBuffers
from crew.planner.measured import Comparison
from crew.planner.vram import GPU_KV_TYPE, RunSettings, VramEstimate
from crew.serving.spec import LLAMA_SERVER, LaunchSpec, ServedModel, llamacpp_spec

SLOT_COUNTS = (1, 4)
GPU_SLOT_CTX = 4096   # per slot: --parallel 4 → --ctx-size 16384
CPU_SLOT_CTX = 512
ALIAS = "gpu-check"
PORT_BASE = 18840
# The synthetic vocabulary's unk, bos and eos (synth.py): banned, so every request decodes all its tokens.
BANNED_TOKENS = (0, 1, 2)
_PROMPT_TOKENS = 32
_WARMUP_TOKENS = 4    # one short request first: CUDA graphs and ggml-cuda's pool are set up, not timed
MIB = 1024 * 1024


@dataclass(frozen=True)
class SlotsSpec:
    model: str          # the shape's name
    path: str           # the GGUF
    slots: int          # --parallel
    ctx_tokens: int     # per slot
    gpu: bool
    n_gen: int          # tokens per request, timed
    n_vocab: int
    kv_type: str = GPU_KV_TYPE  # the layout's default (gpu_layout.yaml kv_type)
    threads: int = 1    # CPU threads on the dry run (the machine is shared); the GPU server takes its default
    batch: int = 2048
    ubatch: int = 512

    @property
    def label(self) -> str:
        return f"llama-server {self.model} {self.slots} slot(s) ctx {self.ctx_tokens}/slot {self.kv_type}"


def run_settings(spec: SlotsSpec) -> RunSettings:
    """What the planner estimates an agent with `slots` requests on llama-server at (crew/planner/build.py:
    RunSettings' defaults, the layout's KV type, one logits row per slot, parallel = slots)."""
    return RunSettings(ctx_tokens=spec.ctx_tokens, parallel=spec.slots, kv_type=spec.kv_type, flash_attn=True,
                       batch=spec.batch, ubatch=spec.ubatch, device="cuda" if spec.gpu else "cpu",
                       outputs_per_slot=1)


def served_model(spec: SlotsSpec) -> ServedModel:
    """What crew/serving/launch.py makes of that plan (every field from the same settings)."""
    s = run_settings(spec)
    return ServedModel(alias=ALIAS, path=spec.path, ctx_tokens=s.ctx_tokens, n_gpu_layers=-1 if spec.gpu else 0,
                       flash_attn=s.flash_attn, kv_type=s.kv_type, batch=s.batch, ubatch=s.ubatch,
                       n_threads=0 if spec.gpu else spec.threads, slots=s.parallel)


def launch_spec(spec: SlotsSpec, binary: str, port: int, gpu_uuid: str | None = None) -> LaunchSpec:
    """The crew's LaunchSpec for it: pinned to the GPU by UUID as the crew pins, or kept off any GPU."""
    env = {"CUDA_VISIBLE_DEVICES": gpu_uuid or "0"} if spec.gpu else {"CUDA_VISIBLE_DEVICES": ""}
    return llamacpp_spec(f"slots{spec.slots}", (served_model(spec),), port, env=env, server_binary=binary)


def prompt_tokens(n_vocab: int) -> list[int]:
    """Ordinary token ids (synthetic models have no tokenizer for text; llama-server takes ids)."""
    from benchmarks.gpu_check.case import _token

    return [_token(i, n_vocab) for i in range(_PROMPT_TOKENS)]


@dataclass(frozen=True)
class SlotsLevel:
    at_once: int
    tokens: int
    wall_s: float
    first_token_s: float  # median

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class SlotsResult:
    log: str              # the server's load log, up to "model loaded"
    argv: tuple[str, ...]
    start_s: float        # start to answering
    levels: tuple[SlotsLevel, ...]


class OverBudget(RuntimeError):
    pass


def load_log(text: str) -> str:
    """The log up to the end of loading: the buffers are all logged by then; requests log nothing of them."""
    end = text.find("model loaded")
    return text if end < 0 else text[:end]


def run_server(spec: SlotsSpec, binary: str, state_dir: Path, deadline: float, *,
               gpu_uuid: str | None = None) -> SlotsResult:
    """Start the server, measure, stop it. `deadline` (time.monotonic()): a timer stops the server then, and
    OverBudget says so. ServingError (with the log's last lines) when it does not start."""
    from benchmarks.bench_serving import _level
    from crew.serving.process import Supervisor, free_port

    ls = launch_spec(spec, binary, free_port(PORT_BASE), gpu_uuid)
    supervisor = Supervisor(state_dir)
    expired = threading.Event()

    def expire() -> None:  # a request in flight then fails: its connection is gone
        expired.set()
        supervisor.stop_all()

    def check() -> None:  # the timer may fire before the server is registered: each step looks too
        if expired.is_set():
            raise OverBudget("stopped at the end of its time budget")

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        with supervisor.running([ls], timeout_s=max(1.0, deadline - time.monotonic())):
            start_s = time.monotonic() - started
            prompt = prompt_tokens(spec.n_vocab)
            check()
            _level(ls, LLAMA_SERVER, 1, _WARMUP_TOKENS, BANNED_TOKENS, prompt)
            levels = []
            for n in sorted({1, spec.slots}):
                check()
                levels.append(_level(ls, LLAMA_SERVER, n, spec.n_gen, BANNED_TOKENS, prompt))
            check()
    except OverBudget:
        raise
    except Exception as exc:
        if expired.is_set():
            raise OverBudget(f"stopped at the end of its time budget ({type(exc).__name__})") from exc
        raise
    finally:
        timer.cancel()
    log = (state_dir / ls.log_name).read_text(encoding="utf-8", errors="replace")
    return SlotsResult(log=load_log(log), argv=ls.argv, start_s=start_s,
                       levels=tuple(SlotsLevel(lv.at_once, lv.tokens, lv.wall_s, lv.first_token_s)
                                    for lv in levels))


@dataclass(frozen=True)
class SlotsRow:
    model: str
    slots: int
    ctx_per_slot: int
    kv_type: str
    estimate_weights_bytes: int   # crew.planner.vram.estimate, on the device
    estimate_kv_bytes: int
    estimate_compute_bytes: int
    weights_bytes: int            # llama-server's device buffers, from its load log
    kv_bytes: int
    compute_bytes: int
    host_bytes: int               # what the log put in host memory (CPU, CUDA_Host)
    start_s: float
    tokens_per_request: int
    levels: tuple[SlotsLevel, ...]

    def comparisons(self) -> list[Comparison]:
        """Estimate vs log per component, with the estimator's own accuracy targets (crew/planner/measured)."""
        return [Comparison("weights", self.estimate_weights_bytes, self.weights_bytes),
                Comparison("kv_cache", self.estimate_kv_bytes, self.kv_bytes),
                Comparison("compute", self.estimate_compute_bytes, self.compute_bytes)]

    @property
    def within_target(self) -> bool:
        return all(c.within_target for c in self.comparisons())

    def tokens_per_s(self, at_once: int) -> float | None:
        return next((lv.tokens_per_s for lv in self.levels if lv.at_once == at_once), None)


def make_row(spec: SlotsSpec, result: SlotsResult, buffers: LoadBuffers, est: VramEstimate) -> SlotsRow:
    d = buffers.device
    return SlotsRow(model=spec.model, slots=spec.slots, ctx_per_slot=spec.ctx_tokens, kv_type=spec.kv_type,
                    estimate_weights_bytes=est.weights_bytes, estimate_kv_bytes=est.kv_cache_bytes,
                    estimate_compute_bytes=est.compute_bytes, weights_bytes=d.model_bytes, kv_bytes=d.kv_cache_bytes,
                    compute_bytes=d.compute_bytes, host_bytes=buffers.host_bytes, start_s=result.start_s,
                    tokens_per_request=spec.n_gen, levels=result.levels)


def row_json(row: SlotsRow) -> dict[str, Any]:
    out = asdict(row)
    out["levels"] = [asdict(lv) | {"tokens_per_s": lv.tokens_per_s} for lv in row.levels]
    out["errors_bytes"] = {c.component: c.error_bytes for c in row.comparisons()}
    out["within_target"] = {c.component: c.within_target for c in row.comparisons()}
    return out


HEADER = ["model", "slots", "ctx/slot", "KV", "est. KV MiB", "llama-server KV MiB", "est. compute MiB",
          "llama-server compute MiB", "est. − log weights MiB", "within target", "1 at once tok/s",
          "all slots at once tok/s", "start s"]


def table_markdown(rows: list[SlotsRow], *, device_label: str) -> str:
    """One Markdown table of the server's buffers against the estimate, and its aggregate decode speed."""
    lines = [f"| {' | '.join(HEADER)} |".replace("llama-server KV", f"llama-server {device_label} KV")
             .replace("llama-server compute", f"llama-server {device_label} compute"),
             "|" + "|".join("---" for _ in HEADER) + "|"]
    for r in rows:
        one, full = r.tokens_per_s(1), r.tokens_per_s(r.slots)
        cells = [r.model, str(r.slots), str(r.ctx_per_slot), r.kv_type, _mib(r.estimate_kv_bytes), _mib(r.kv_bytes),
                 _mib(r.estimate_compute_bytes), _mib(r.compute_bytes),
                 f"{(r.estimate_weights_bytes - r.weights_bytes) / MIB:+.1f}",
                 "yes" if r.within_target else "no: " + ", ".join(c.component for c in r.comparisons()
                                                                  if not c.within_target),
                 "—" if one is None else f"{one:.1f}", "—" if full is None else f"{full:.1f}", f"{r.start_s:.1f}"]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _mib(n: int) -> str:
    return f"{n / MIB:.1f}"
