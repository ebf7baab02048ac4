"""Launch specs: what one model server is, as data. Pure — building argv and env starts nothing.

A spec is everything needed to start, find and check a server: the program, the loopback port, the env
(the GPU pinning lives here), the log file name and the models it serves. The command line is rendered
from those fields when asked for (`argv`), never edited afterwards: a server moved to another port is
`replace(spec, port=...)` and its argv, config file and OLLAMA_HOST follow. `crew.serving.launch` builds
specs from a plan; `crew.serving.process` starts and stops them.

Three engines run a spec:
- `llama-server`: llama.cpp's own server, built at set-up from the source llama-cpp-python vendors
  (crew/models/server_binary.py). One model per process, `slots` parallel sequences decoded together
  (continuous batching), each with the model's whole context — the KV cache is `--no-kv-unified`, so a
  full slot cannot abort its neighbours (llama.cpp #23652), and `-c` is slots × context because without
  the unified pool llama.cpp splits it evenly.
- `llama-cpp-python`: its Python server (one request at a time); where no llama-server was built.
- `ollama`: `ollama serve`, configured by environment.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace

from crew.models.llamacpp import KV_TYPE_IDS  # ggml type ids: one table for everything we read or pass
from crew.units import LOCAL, LOOPBACK

LLAMA_SERVER = "llama-server"
LLAMA_CPP_PYTHON = "llama-cpp-python"
OLLAMA = "ollama"
ENGINES = (LLAMA_SERVER, LLAMA_CPP_PYTHON, OLLAMA)


@dataclass(frozen=True)
class ServedModel:
    """One model a server hosts, under the alias agents address it by."""

    alias: str
    path: str
    ctx_tokens: int                 # per slot: each parallel sequence gets this much context
    n_gpu_layers: int = -1          # -1: all layers offloaded (ignored on a CPU build)
    flash_attn: bool = False
    kv_type: str = "f16"
    batch: int = 512
    ubatch: int = 512
    tensor_split: tuple[float, ...] = ()
    # Decode threads; 0: the engine's default (llama-cpp-python: half the cores, on 2 cores one thread);
    # -1: every core, what a CPU server wants.
    n_threads: int = 0
    slots: int = 1                  # sequences decoded at once (llama-server's --parallel)
    draft_path: str = ""            # a smaller model of the same family drafting tokens (speculative decoding)
    ngram: bool = False             # tokens drafted from n-grams of the context (llama-server only)


@dataclass(frozen=True)
class LaunchSpec:
    server_id: str                  # stable name, e.g. "gpu0" or "cpu"
    backend: str                    # the plan's backend: "llamacpp" | "ollama"
    program: tuple[str, ...]        # the executable and its fixed leading arguments
    extra_env: Mapping[str, str]    # the variables we set (pinning, settings); the process inherits the rest
    port: int
    log_name: str
    models: tuple[ServedModel, ...]
    engine: str = LLAMA_CPP_PYTHON  # which of ENGINES the program is
    gpu_uuids: tuple[str, ...] = ()
    simulated: bool = False
    bind_address: str = LOOPBACK    # the address it listens on (always loopback); the machine is `machine`
    # What the plan says of it, typed, so nothing parses the server id back:
    machine: str = LOCAL            # the host of the plan it runs on
    gpu_indices: tuple[int, ...] = ()  # the GPUs it is pinned to, on `machine`; () for a CPU server
    planned_bytes: int = 0          # what the plan counts for it (its models, their agents' KV, its context)
    agents: tuple[str, ...] = ()    # the agents it serves
    agent_models: tuple[str, ...] = ()  # the alias each of `agents` asks for, in the same order
    unresolved_models: tuple[str, ...] = ()  # catalog models still to be pulled or found
    planned_pinning: str = ""       # simulated: the CUDA_VISIBLE_DEVICES it would have had
    failover_from: str = ""         # a failover server: the server the agent left

    def model_of(self, agent: str) -> ServedModel:
        """The model `agent` was bound to when the plan was turned into specs (launch.py), carried here."""
        alias = dict(zip(self.agents, self.agent_models, strict=True))[agent]
        return next(m for m in self.models if m.alias == alias)

    @property
    def on_gpu(self) -> bool:
        return bool(self.gpu_indices)

    @property
    def base_url(self) -> str:
        return f"http://{self.bind_address}:{self.port}"

    @property
    def slots(self) -> int:
        """Requests it decodes at once (llama-cpp-python's server: one)."""
        if self.engine == LLAMA_SERVER:
            return max(m.slots for m in self.models)
        if self.engine == OLLAMA:
            return int(self.extra_env.get("OLLAMA_NUM_PARALLEL", "1") or 1)
        return 1

    @property
    def env(self) -> dict[str, str]:
        env = dict(self.extra_env)
        if self.engine == OLLAMA:
            env["OLLAMA_HOST"] = f"{self.bind_address}:{self.port}"
        return env

    @property
    def argv(self) -> tuple[str, ...]:
        if self.engine == LLAMA_SERVER:
            return (*self.program, *llama_server_args(self.models, self.bind_address, self.port))
        if self.engine == OLLAMA:
            return (*self.program, "serve")
        if len(self.models) == 1:
            return (*self.program, "--host", self.bind_address, "--port", str(self.port),
                    *_NO_INTERRUPTS, *llamacpp_model_args(self.models[0]))
        return (*self.program, "--config_file", self.config_name)

    @property
    def config_name(self) -> str:
        return f"{self.server_id}.json"

    @property
    def config_json(self) -> str | None:
        """llama-cpp-python's multi-model config, written next to the log before start."""
        if self.engine != LLAMA_CPP_PYTHON or len(self.models) < 2:
            return None
        return json.dumps({"host": self.bind_address, "port": self.port, "interrupt_requests": False,
                           "models": [_model_config(m) for m in self.models]}, indent=2)

    def shell_command(self) -> str:
        """The exact command a user could paste, env first (what `plan-gpus` shows)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        cmd = " ".join(shlex.quote(a) for a in self.argv)
        return f"{env} {cmd}".strip()

    def as_json(self) -> dict[str, object]:
        """What `plan-gpus --json` shows of this server (schema localcrew.plan/1, `servers`)."""
        return {"server_id": self.server_id, "host": self.machine, "port": self.port,
                "env": self.env, "argv": list(self.argv), "models": [m.alias for m in self.models],
                "simulated": self.simulated, "config_json": self.config_json, "engine": self.engine,
                "slots": self.slots, "gpu_indices": list(self.gpu_indices), "planned_bytes": self.planned_bytes}


SERVER_PYTHON_FLAGS = ("-X", "faulthandler")
# llama-cpp-python's server by default cuts a streaming answer short when another request arrives (measured:
# 8 requests at once, 135 tokens in all instead of 8 x 128). Requests of agents sharing a server must queue.
_NO_INTERRUPTS = ("--interrupt_requests", "false")


def llamacpp_model_args(m: ServedModel) -> list[str]:
    args = [
        "--model", m.path, "--model_alias", m.alias, "--n_ctx", str(m.ctx_tokens),
        "--n_gpu_layers", str(m.n_gpu_layers), "--n_batch", str(m.batch), "--n_ubatch", str(m.ubatch),
        # logits for every token would add n_batch x n_vocab x 4 bytes that the planner did not budget.
        "--logits_all", "false",
        "--flash_attn", "true" if m.flash_attn else "false",
    ]
    if m.kv_type != "f16":
        args += ["--type_k", str(KV_TYPE_IDS[m.kv_type]), "--type_v", str(KV_TYPE_IDS[m.kv_type])]
    if m.tensor_split:
        args += ["--tensor_split", *(f"{x:g}" for x in m.tensor_split)]
    if m.n_threads:
        args += ["--n_threads", str(m.n_threads)]
    return args



# llama-server's n-gram drafting (`draft_model: ngram`): a 6-token n-gram of the context looked up, up to 12
# tokens drafted. benchmarks/bench_ngram.py: these sizes against the defaults (12, 48) on the 2-core machine.
NGRAM_ARGS = ("--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "6", "--spec-ngram-simple-size-m", "12")

def llama_server_args(models: tuple[ServedModel, ...], host: str, port: int) -> list[str]:
    """llama-server's flags for one model: every setting the planner counted is passed, none left to
    llama.cpp's defaults that would change the memory (its `--fit` would shrink the context the plan gave)."""
    if len(models) != 1:
        raise ValueError("llama-server serves one model per process (crew/serving/launch.py)")
    m = models[0]
    args = [
        "--host", host, "--port", str(port),  # always --port: the default moved from 8080 to 9931
        "--model", m.path, "--alias", m.alias,
        "--ctx-size", str(m.ctx_tokens * m.slots), "--parallel", str(m.slots), "--no-kv-unified",
        "--n-gpu-layers", str(m.n_gpu_layers if m.n_gpu_layers >= 0 else 999),
        "--batch-size", str(m.batch), "--ubatch-size", str(m.ubatch),
        "--flash-attn", "on" if m.flash_attn else "off",
        "--fit", "off",            # the plan decided the context; never let llama.cpp shrink it
        "--cache-ram", "0",        # no host-memory prompt cache beside the slots (the plan does not count one)
        "--metrics", "--no-webui", "--jinja",
        # at the default (3) llama-server drops the load log's buffer sizes, which the residency check reads
        "--log-verbosity", "4",
    ]
    if m.kv_type != "f16":
        args += ["--cache-type-k", m.kv_type, "--cache-type-v", m.kv_type]
    if m.tensor_split:
        args += ["--tensor-split", ",".join(f"{x:g}" for x in m.tensor_split)]
    if m.n_threads:
        args += ["--threads", str(m.n_threads if m.n_threads > 0 else (os.cpu_count() or 1))]
    if m.n_gpu_layers == 0:
        # On the CPU the weights are read into memory rather than mapped: with a mapping, the file range of the
        # tensors llama.cpp repacks (Q4_0, Q4_K on AVX2) is counted twice, mapped and repacked, and the load
        # log reports more than the plan counts (measured: 1.85 vs 1.82 GiB for the embedded model).
        args += ["--load-mode", "none"]
    if m.draft_path:
        args += ["--model-draft", m.draft_path, "--n-gpu-layers-draft",
                 str(m.n_gpu_layers if m.n_gpu_layers >= 0 else 999)]
    elif m.ngram:
        args += [*NGRAM_ARGS]
    return args


def llamacpp_spec(server_id: str, models: tuple[ServedModel, ...], port: int, *,
                  env: Mapping[str, str] | None = None, gpu_uuids: tuple[str, ...] = (),
                  simulated: bool = False, python: str | None = None,
                  server_binary: str | None = None) -> LaunchSpec:
    """A llama.cpp server on loopback: llama-server when `server_binary` is given, else llama-cpp-python's
    (one model: plain flags; several: a JSON config file)."""
    if not models:
        raise ValueError("a server needs at least one model")
    if server_binary:
        return LaunchSpec(server_id=server_id, backend="llamacpp", program=(server_binary,), engine=LLAMA_SERVER,
                          extra_env=dict(env or {}), port=port, log_name=f"{server_id}.log",
                          models=models, gpu_uuids=gpu_uuids, simulated=simulated)
    # LOCALCREW_SERVER_PYTHON: another interpreter whose llama_cpp serves (a venv with a CUDA build, say)
    exe = python or os.environ.get("LOCALCREW_SERVER_PYTHON") or sys.executable
    # -X faulthandler: a crash in llama.cpp's native code leaves "Fatal Python error: Segmentation fault" and
    # the Python frames in the server's log (crew/hardware/crash.py reads them), not an empty log.
    single = tuple(replace(m, slots=1) for m in models)  # its server answers one request at a time
    return LaunchSpec(server_id=server_id, backend="llamacpp", program=(exe, *SERVER_PYTHON_FLAGS, "-m",
                      "llama_cpp.server"), engine=LLAMA_CPP_PYTHON, extra_env=dict(env or {}), port=port,
                      log_name=f"{server_id}.log", models=single, gpu_uuids=gpu_uuids, simulated=simulated)


def _model_config(m: ServedModel) -> dict[str, object]:
    cfg: dict[str, object] = {
        "model": m.path, "model_alias": m.alias, "n_ctx": m.ctx_tokens, "n_gpu_layers": m.n_gpu_layers,
        "n_batch": m.batch, "n_ubatch": m.ubatch, "logits_all": False, "flash_attn": m.flash_attn,
    }
    if m.kv_type != "f16":
        cfg["type_k"] = cfg["type_v"] = KV_TYPE_IDS[m.kv_type]
    if m.tensor_split:
        cfg["tensor_split"] = list(m.tensor_split)
    if m.n_threads:
        cfg["n_threads"] = m.n_threads
    return cfg
