"""Launch specs: what one model server is, as data. Pure — building argv and env starts nothing.

A spec is everything needed to start, find and check a server: argv, env (the GPU pinning lives here),
the loopback port, the log file name and the models it serves. `crew.serving.launch` builds specs from a
plan; `crew.serving.process` starts and stops them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from crew.models.llamacpp import KV_TYPE_IDS  # ggml type ids: one table for everything we read or pass
from crew.units import LOCAL, LOOPBACK


@dataclass(frozen=True)
class ServedModel:
    """One model a server hosts, under the alias agents address it by."""

    alias: str
    path: str
    ctx_tokens: int
    n_gpu_layers: int = -1          # -1: all layers offloaded (ignored on a CPU build)
    flash_attn: bool = False
    kv_type: str = "f16"
    batch: int = 512
    ubatch: int = 512
    tensor_split: tuple[float, ...] = ()
    # Decode threads; 0: llama-cpp-python's default, which is half the cores (on 2 cores, one thread);
    # -1: every core, what a CPU server wants.
    n_threads: int = 0


@dataclass(frozen=True)
class LaunchSpec:
    server_id: str                  # stable name, e.g. "gpu0" or "cpu"
    backend: str                    # "llamacpp" | "ollama"
    argv: tuple[str, ...]
    env: Mapping[str, str]          # only the variables we set; the process inherits the rest
    port: int
    log_name: str
    models: tuple[ServedModel, ...]
    gpu_uuids: tuple[str, ...] = ()
    simulated: bool = False
    host: str = LOOPBACK            # the address it binds (always loopback); the machine is `machine`
    config_json: str | None = None  # llama.cpp multi-model config, written next to the log before start
    # What the plan says of it, typed, so nothing parses the server id back:
    machine: str = LOCAL            # the host of the plan it runs on
    gpu_indices: tuple[int, ...] = ()  # the GPUs it is pinned to, on `machine`; () for a CPU server
    planned_bytes: int = 0          # what the plan counts for it (its models, their agents' KV, its context)
    agents: tuple[str, ...] = ()    # the agents it serves
    unresolved_models: tuple[str, ...] = ()  # catalog models still to be pulled or found
    planned_pinning: str = ""       # simulated: the CUDA_VISIBLE_DEVICES it would have had
    failover_from: str = ""         # a failover server: the server the agent left

    @property
    def on_gpu(self) -> bool:
        return bool(self.gpu_indices)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def shell_command(self) -> str:
        """The exact command a user could paste, env first (what `plan-gpus` shows)."""
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        cmd = " ".join(shlex.quote(a) for a in self.argv)
        return f"{env} {cmd}".strip()

    def as_json(self) -> dict[str, object]:
        """What `plan-gpus --json` shows of this server (schema localcrew.plan/1, `servers`)."""
        return {"server_id": self.server_id, "host": self.machine, "port": self.port,
                "env": dict(self.env), "argv": list(self.argv), "models": [m.alias for m in self.models],
                "simulated": self.simulated, "config_json": self.config_json,
                "gpu_indices": list(self.gpu_indices), "planned_bytes": self.planned_bytes}




SERVER_PYTHON_FLAGS = ("-X", "faulthandler")


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


def llamacpp_spec(server_id: str, models: tuple[ServedModel, ...], port: int, *,
                  env: Mapping[str, str] | None = None, gpu_uuids: tuple[str, ...] = (),
                  simulated: bool = False, python: str | None = None) -> LaunchSpec:
    """A llama-cpp-python server on loopback. One model: plain flags; several: a JSON config file."""
    if not models:
        raise ValueError("a server needs at least one model")
    # LOCALCREW_SERVER_PYTHON: another interpreter whose llama_cpp serves (a venv with a CUDA build, say)
    exe = python or os.environ.get("LOCALCREW_SERVER_PYTHON") or sys.executable
    # -X faulthandler: a crash in llama.cpp's native code leaves "Fatal Python error: Segmentation fault" and
    # the Python frames in the server's log (crew/hardware/crash.py reads them), not an empty log.
    base = [exe, *SERVER_PYTHON_FLAGS, "-m", "llama_cpp.server", "--host", LOOPBACK, "--port", str(port)]
    config_json = None
    if len(models) == 1:
        argv = (*base, *llamacpp_model_args(models[0]))
    else:
        import json

        config_json = json.dumps({
            "host": LOOPBACK, "port": port,
            "models": [_model_config(m) for m in models],
        }, indent=2)
        argv = (exe, *SERVER_PYTHON_FLAGS, "-m", "llama_cpp.server", "--config_file", f"{server_id}.json")
    return LaunchSpec(server_id=server_id, backend="llamacpp", argv=tuple(argv), env=dict(env or {}),
                      port=port, log_name=f"{server_id}.log", models=models, gpu_uuids=gpu_uuids,
                      simulated=simulated, config_json=config_json)


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


def with_port(spec: LaunchSpec, port: int) -> LaunchSpec:
    """The same server on another port (the planned one was taken): argv and config follow."""
    from dataclasses import replace

    old = str(spec.port)
    argv = tuple(str(port) if prev == "--port" and a == old else a
                 for prev, a in zip(("",) + spec.argv[:-1], spec.argv, strict=True))
    env = dict(spec.env)
    if "OLLAMA_HOST" in env:
        env["OLLAMA_HOST"] = f"{spec.host}:{port}"
    config = spec.config_json
    if config is not None:
        import json

        data = json.loads(config)
        data["port"] = port
        config = json.dumps(data, indent=2)
    return replace(spec, argv=argv, env=env, port=port, config_json=config)
