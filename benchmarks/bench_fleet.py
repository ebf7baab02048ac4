"""Fleet benchmarks (issue #16), measured side by side in one run on a local Ray cluster on this machine:

1. cluster start with three nodes: a `ray.cluster_utils.Cluster` (head + 2 workers, each declaring one fake
   card as a `gpu:<UUID>` resource, token auth on with a token of this run's own, Ray's files in a temporary
   folder, nothing written to ~/.ray): seconds until all three nodes are alive, and until this process has
   joined (the join alone as well);
2. relay vs direct to the same server in the same run: one ServerActor on a worker node starts a CPU
   llama.cpp server for embedded-tiny (as tests/test_fleet_cluster.py does), a Relay on this machine's
   loopback forwards to it; then --requests streamed chat completions per side, alternating relay and direct
   (direct: the server's own 127.0.0.1 URL, reachable here since every node is on this machine), same prompt
   and seed, temperature 0, EOS banned so every answer is --max-tokens long. Per side: median first-token
   latency and median decode tokens/s (content chunks after the first over the time from the first chunk to
   the last: llama.cpp streams one token per chunk, and its stream carries no usage); then the decode ratio
   relay/direct (goal ≥ 0.97) and the first-token latency the relay adds (goal ≤ 20 ms).

One unmeasured request per side comes first (llama.cpp then reuses the prompt's cache on both sides alike).
Everything started is stopped on exit, Ctrl-C or error. Figures only, no pass/fail: the goals are printed
next to them.

    uv run python benchmarks/bench_fleet.py [--requests 6] [--max-tokens 256] [--json fleet.json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crew.fleet import actors, cluster, probe  # noqa: E402
from crew.fleet.relay import Relay  # noqa: E402
from crew.models.embedded import tiny_model_path  # noqa: E402
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec  # noqa: E402
from crew.units import GIB, LOOPBACK  # noqa: E402

CARDS = ("GPU-fake-1", "GPU-fake-2", "GPU-fake-3")  # head, worker, worker (the server's node)
SERVER_CARD = CARDS[2]
PROMPT = "Write a Python function that returns the n-th Fibonacci number, with a docstring and tests."
EOS = 2  # SmolLM2's <|im_end|>/EOS; banned so every answer is --max-tokens long
SEED = 1
DECODE_RATIO_GOAL = 0.97
ADDED_FIRST_TOKEN_GOAL_MS = 20.0


# --- pure: figures from what the client saw ---------------------------------------------------------------

def sse_content(line: bytes) -> str | None:
    """The content of one SSE line of a streamed chat completion; None for anything else (a role-only
    delta, the final chunk, [DONE], a blank line)."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith("data: ") or text == "data: [DONE]":
        return None
    choices = json.loads(text[6:]).get("choices") or [{}]
    content = choices[0].get("delta", {}).get("content")
    return content or None


@dataclass(frozen=True)
class Streamed:
    """One streamed answer as the client saw it (time.perf_counter seconds)."""

    sent_s: float
    chunk_s: tuple[float, ...]  # arrival of each content chunk: one token each
    text: str

    @property
    def tokens(self) -> int:
        return len(self.chunk_s)

    @property
    def first_token_ms(self) -> float:
        return (self.chunk_s[0] - self.sent_s) * 1000 if self.chunk_s else math.nan

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first over the time from the first to the last: the decode rate, without the
        prompt's evaluation."""
        span_s = self.chunk_s[-1] - self.chunk_s[0] if self.chunk_s else 0.0
        return (self.tokens - 1) / span_s if span_s > 0 else math.nan


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


@dataclass(frozen=True)
class Side:
    requests: int
    first_token_ms: float        # median
    decode_tokens_per_s: float   # median
    tokens: float                # median tokens per answer


def side(answers: list[Streamed]) -> Side:
    return Side(requests=len(answers), first_token_ms=_median([a.first_token_ms for a in answers]),
                decode_tokens_per_s=_median([a.decode_tokens_per_s for a in answers]),
                tokens=_median([float(a.tokens) for a in answers]))


@dataclass(frozen=True)
class Comparison:
    relay: Side
    direct: Side
    decode_ratio: float          # relay / direct decode tokens/s
    added_first_token_ms: float  # relay - direct
    same_text: bool              # every answer, relay and direct, the same text (greedy, one seed)

    @property
    def decode_goal_met(self) -> bool:
        return self.decode_ratio >= DECODE_RATIO_GOAL

    @property
    def first_token_goal_met(self) -> bool:
        return self.added_first_token_ms <= ADDED_FIRST_TOKEN_GOAL_MS


def compare(relay: list[Streamed], direct: list[Streamed]) -> Comparison:
    r, d = side(relay), side(direct)
    ratio = r.decode_tokens_per_s / d.decode_tokens_per_s if d.decode_tokens_per_s > 0 else math.nan
    return Comparison(relay=r, direct=d, decode_ratio=ratio, added_first_token_ms=r.first_token_ms - d.first_token_ms,
                      same_text=len({a.text for a in relay + direct}) == 1)


@dataclass(frozen=True)
class ClusterStart:
    nodes: int
    nodes_alive_s: float  # start until every node is alive
    join_s: float         # this process joining the cluster (ray.init)
    total_s: float        # start until alive and joined


# --- IO: the cluster, the server, the requests -------------------------------------------------------------

def _card(uuid: str) -> dict[str, float]:
    return {probe.gpu_resource(uuid): 1, f"{probe.GIB_PREFIX}{uuid}": 12}


@contextlib.contextmanager
def _three_nodes(ray_dir: str) -> Iterator[tuple[Any, ClusterStart]]:
    """The cluster, token auth on (a token of this run's own, in the environment the nodes inherit); Ray's
    session files in `ray_dir`. Stopped, and the environment restored, on the way out."""
    from ray.cluster_utils import Cluster

    # Ray still writes the cluster's address to its default folder (/tmp/ray/ray_current_cluster) whatever
    # temp_dir says, and fails when that folder does not exist (a clean machine): make sure it does.
    os.makedirs(os.path.join(tempfile.gettempdir(), "ray"), exist_ok=True)

    settings = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    c = None
    try:
        if not cluster.auth_mode():
            raise RuntimeError("this Ray has no token authentication; the benchmark runs only with it")
        t0 = time.perf_counter()
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": _card(CARDS[0]),
                                                          "temp_dir": ray_dir})
        for uuid in CARDS[1:]:
            c.add_node(num_cpus=1, resources=_card(uuid), temp_dir=ray_dir)
        c.wait_for_nodes()
        alive_s = time.perf_counter() - t0
        info = cluster.connect(c.address)
        total_s = time.perf_counter() - t0
        if info.nodes != len(CARDS) or not info.token_auth:
            raise RuntimeError(f"joined {info.nodes} nodes (token auth {info.token_auth}), wanted {len(CARDS)}")
        yield c, ClusterStart(nodes=info.nodes, nodes_alive_s=alive_s, join_s=info.connect_s, total_s=total_s)
    finally:
        cluster.disconnect()
        if c is not None:
            c.shutdown()  # type: ignore[no-untyped-call]
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _server_spec(ctx_tokens: int) -> LaunchSpec:
    """What `simulate: true` plans for a GPU server: a CPU server carrying the pinning it would have had."""
    model = ServedModel("tiny", str(tiny_model_path()), ctx_tokens, n_gpu_layers=0)
    spec = llamacpp_spec("gpu0", (model,), 11950, simulated=True,
                         env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": SERVER_CARD,
                              "LOCALCREW_SIMULATED": "1"})
    return replace(spec, machine="node3", gpu_indices=(0,), planned_pinning=SERVER_CARD, planned_bytes=GIB // 4)


@contextlib.contextmanager
def _served(state_dir: str, ctx_tokens: int) -> Iterator[tuple[int, Relay]]:
    """(the server's port on its node's loopback, its relay): the actor on the node holding SERVER_CARD."""
    import ray

    node = next(str(n["NodeID"]) for n in cluster.alive_nodes()
                if probe.gpu_resource(SERVER_CARD) in n["Resources"])
    actor = actors.place(_server_spec(ctx_tokens), node, state_dir=state_dir)
    relay = None
    try:
        started = ray.get(actor.start.remote(), timeout=300)
        relay = Relay(started.server_id, actor)
        yield started.port, relay
    finally:
        if relay is not None:
            relay.close()
        with contextlib.suppress(Exception):  # stopping what may not have started; the kill below ends it
            ray.get(actor.stop.remote(), timeout=30)
        ray.kill(actor)


def _stream(port: int, max_tokens: int) -> Streamed:
    payload = {"model": "tiny", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens,
               "seed": SEED, "temperature": 0, "logit_bias": {str(EOS): -100.0}, "stream": True}
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=600)
    try:
        sent_s = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=json.dumps(payload).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"127.0.0.1:{port} answered {resp.status}: {resp.read()[:500]!r}")
        chunks: list[float] = []
        text = ""
        while line := resp.readline():
            content = sse_content(line)
            if content is not None:
                chunks.append(time.perf_counter())
                text += content
        return Streamed(sent_s=sent_s, chunk_s=tuple(chunks), text=text)
    finally:
        conn.close()


def _relay_vs_direct(direct_port: int, relay_port: int, requests: int, max_tokens: int
                     ) -> tuple[list[Streamed], list[Streamed]]:
    """Alternating, the side going first swapped every pair so neither always follows the other."""
    for port in (relay_port, direct_port):  # warm-up, not measured
        _stream(port, max_tokens)
    relay: list[Streamed] = []
    direct: list[Streamed] = []
    for i in range(requests):
        order = ((relay, relay_port), (direct, direct_port))
        for answers, port in order if i % 2 == 0 else order[::-1]:
            answers.append(_stream(port, max_tokens))
    return relay, direct


# --- the command -------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=6, help="streamed requests per side (default 6)")
    ap.add_argument("--max-tokens", type=int, default=256, help="tokens per answer (default 256)")
    ap.add_argument("--json", dest="json_out", help="also write the figures to this file")
    return ap


def render(start: ClusterStart, cmp: Comparison, args: argparse.Namespace, ray_version: str,
           load: tuple[float, float, float]) -> list[str]:
    r, d = cmp.relay, cmp.direct
    met = {True: "met", False: "NOT met"}
    return [
        f"Ray {ray_version}, all nodes on this machine ({os.cpu_count()} cores), token auth; embedded-tiny on a "
        f"CPU llama.cpp server on node 3; {args.requests} requests per side, {args.max_tokens} tokens, median",
        f"1. cluster start, {start.nodes} nodes   all alive {start.nodes_alive_s:7.2f} s   joined "
        f"{start.join_s:5.2f} s   alive and joined {start.total_s:7.2f} s",
        "2. relay vs direct, same server      relay     direct",
        f"   first token (ms)             {r.first_token_ms:9.1f}  {d.first_token_ms:9.1f}   added "
        f"{cmp.added_first_token_ms:+.1f} ms (goal ≤ {ADDED_FIRST_TOKEN_GOAL_MS:g}: {met[cmp.first_token_goal_met]})",
        f"   decode (tokens/s)            {r.decode_tokens_per_s:9.1f}  {d.decode_tokens_per_s:9.1f}   ratio "
        f"relay/direct {cmp.decode_ratio:.3f} (goal ≥ {DECODE_RATIO_GOAL}: {met[cmp.decode_goal_met]})",
        f"   tokens per answer            {r.tokens:9.0f}  {d.tokens:9.0f}   same text on both sides: "
        f"{'yes' if cmp.same_text else 'NO'}",
        f"load average at the end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


def _answer(a: Streamed) -> dict[str, float]:
    return {"tokens": a.tokens, "first_token_ms": a.first_token_ms, "decode_tokens_per_s": a.decode_tokens_per_s}


def _finite(value: Any) -> Any:
    """NaN (a figure that could not be measured) as null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, through every cleanup below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    import ray  # imported before the clock starts: its import is not the cluster's start

    ctx_tokens = max(1024, args.max_tokens + 256)
    tmp = Path(tempfile.mkdtemp(prefix="lc-fleetbench-"))
    try:
        with _three_nodes(str(tmp / "ray")) as (_, start), _served(str(tmp / "node3"), ctx_tokens) as (port, relay):
            relay_answers, direct_answers = _relay_vs_direct(port, relay.endpoint.port, args.requests,
                                                             args.max_tokens)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cmp = compare(relay_answers, direct_answers)
    load = os.getloadavg()
    print("\n".join(render(start, cmp, args, ray.__version__, load)))
    if args.json_out:
        figures = {"ray_version": ray.__version__, "cpu_count": os.cpu_count(), "requests": args.requests,
                   "max_tokens": args.max_tokens, "cluster_start": asdict(start), "relay_vs_direct": asdict(cmp),
                   "decode_goal_met": cmp.decode_goal_met, "first_token_goal_met": cmp.first_token_goal_met,
                   "answers": {"relay": [_answer(a) for a in relay_answers],
                               "direct": [_answer(a) for a in direct_answers]},
                   "load_average": list(load)}
        Path(args.json_out).write_text(json.dumps(_finite(figures), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything started was stopped on the way out: say so, not a traceback
        print("bench_fleet: interrupted; the cluster, the server and the relay are stopped", file=sys.stderr)
        sys.exit(130)
