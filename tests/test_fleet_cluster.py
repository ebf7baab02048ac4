"""crew/fleet on a real local Ray cluster: two nodes on this machine, each declaring one card as a custom
resource (`gpu:GPU-fake-<n>`); a CPU llama.cpp server started by an actor pinned to node 2's card, reached
only through the relay. One cluster for the whole module (Ray is heavy on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ray = pytest.importorskip("ray")

from crew.fleet import actors, cluster, probe  # noqa: E402
from crew.fleet.actors import Started  # noqa: E402
from crew.fleet.relay import Relay  # noqa: E402
from crew.models.embedded import tiny_model_path  # noqa: E402
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec  # noqa: E402
from crew.units import GIB, LOCAL  # noqa: E402
from tests.ray_cluster import local_cluster  # noqa: E402

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[Any, float]]:
    with local_cluster(["GPU-fake-1", "GPU-fake-2"]) as up:
        yield up


def _node_with(resource: str) -> str:
    return str(next(n["NodeID"] for n in cluster.alive_nodes() if resource in n["Resources"]))


@dataclass
class Served:
    actor: Any
    started: Started
    relay: Relay
    node_id: str


def _tiny_spec() -> LaunchSpec:
    """What `simulate: true` plans for a GPU server: a CPU server carrying the pinning it would have had."""
    model = ServedModel("tiny", str(tiny_model_path()), 512, n_gpu_layers=0)
    spec = llamacpp_spec("gpu0", (model,), 11950, simulated=True,
                         env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "GPU-fake-2",
                              "LOCALCREW_SIMULATED": "1"})
    return replace(spec, machine="node2", gpu_indices=(0,), planned_pinning="GPU-fake-2", planned_bytes=GIB // 4)


@pytest.fixture(scope="module")
def served(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    node = _node_with(probe.gpu_resource("GPU-fake-2"))
    actor = actors.place(_tiny_spec(), node, state_dir=str(tmp_path_factory.mktemp("fleet-node2")))
    started: Started = ray.get(actor.start.remote(), timeout=150)
    relay = Relay(started.server_id, actor)
    yield Served(actor, started, relay, node)
    relay.close()
    ray.get(actor.stop.remote(), timeout=30)
    ray.kill(actor)


def test_probe_reads_each_nodes_declared_cards(ray_cluster: Any) -> None:
    nodes = probe.probe()
    assert sorted(str(g.uuid) for n in nodes for g in n.gpus) == ["GPU-fake-1", "GPU-fake-2"]
    assert {n.source for n in nodes} == {"ray resources"}  # no NVML here: the cards the nodes declare
    assert all(g.total_bytes == 12 * GIB for n in nodes for g in n.gpus)
    assert len({n.hostname for n in nodes}) == 2  # two nodes on one machine, two host names
    assert LOCAL in {n.hostname for n in nodes}  # the node this process is attached to: its cards are local


def test_a_layout_naming_the_cluster_plans_over_its_nodes(ray_cluster: Any) -> None:
    from crew.config import LayoutConfig
    from crew.hardware.inventory import load_inventory

    inv = load_inventory(LayoutConfig(cluster=ray_cluster[0].address))
    assert inv.source == "cluster"
    hosts = {g.host: g.uuid for g in inv.gpus}
    assert hosts[LOCAL] == "GPU-fake-1" and len(hosts) == 2  # the head's card here, the other node's there


def _post(url: str, payload: dict[str, object]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    return NO_PROXY.open(req, timeout=120)


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 24, "seed": 1,
        "temperature": 0}


def _streamed(url: str) -> tuple[float, float, int, str]:
    """(seconds to the first content chunk, seconds in all, content chunks, the text)"""
    t0 = time.monotonic()
    first, chunks, text = 0.0, 0, ""
    with _post(url + "/v1/chat/completions", {**CHAT, "stream": True}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                chunks += 1
                text += delta
                first = first or time.monotonic() - t0
    return first, time.monotonic() - t0, chunks, text


def test_the_actor_runs_the_server_on_its_node_pinned_by_our_env(served: Served) -> None:
    s = served.started
    assert s.node_id == served.node_id and s.pinning == "GPU-fake-2"
    environ = Path(f"/proc/{s.pid}/environ").read_bytes().split(b"\0")
    assert b"CUDA_VISIBLE_DEVICES=GPU-fake-2" in environ  # Ray did not overwrite our pinning
    assert s.residency.simulated and s.residency.planned_bytes == GIB // 4
    assert s.residency.reported_bytes > 0  # the load log was read on the node


def test_answers_through_the_relay_whole_and_streamed(served: Served) -> None:
    direct = f"http://127.0.0.1:{served.started.port}"
    with _post(served.relay.endpoint.base_url + "/v1/chat/completions", CHAT) as resp:
        answer = json.loads(resp.read())
    assert answer["choices"][0]["message"]["content"]
    r_first, r_all, r_chunks, r_text = _streamed(served.relay.endpoint.base_url)
    d_first, d_all, d_chunks, d_text = _streamed(direct)
    assert r_chunks > 1 and r_text == d_text  # chunk by chunk, same greedy answer
    print(f"\nstreamed {r_chunks} chunks: first token relay {r_first * 1000:.0f} ms vs direct "
          f"{d_first * 1000:.0f} ms (+{(r_first - d_first) * 1000:.0f} ms); whole answer relay {r_all:.2f} s "
          f"vs direct {d_all:.2f} s (ratio {d_all / r_all:.2f})")


def _listeners(table: str, port: int) -> list[str]:
    """Local addresses (hex, as the kernel writes them) of sockets listening on `port`."""
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except OSError:
        return []
    return [f[1].split(":")[0] for f in (ln.split() for ln in lines)
            if f[3] == "0A" and int(f[1].split(":")[1], 16) == port]


def test_the_server_listens_on_loopback_only(served: Served) -> None:
    port = served.started.port
    assert _listeners("/proc/net/tcp", port) == ["0100007F"]  # 127.0.0.1 and nowhere else
    assert _listeners("/proc/net/tcp6", port) == []
    assert _listeners("/proc/net/tcp", served.relay.endpoint.port) == ["0100007F"]


def test_two_servers_never_claim_one_card(served: Served) -> None:
    second = actors.place(_tiny_spec(), served.node_id)
    ready, _ = ray.wait([second.status.remote()], timeout=3)
    assert ready == []  # waits for GPU-fake-2, held by the first server's actor
    ray.kill(second)


def test_a_dead_server_is_restarted_by_its_actor(served: Served) -> None:
    os.kill(served.started.pid, signal.SIGKILL)
    with _post(served.relay.endpoint.base_url + "/v1/chat/completions", CHAT) as resp:
        assert json.loads(resp.read())["choices"][0]["message"]["content"]
    status = ray.get(served.actor.status.remote(), timeout=30)
    assert status["restarts"] == 1 and status["pid"] != served.started.pid and status["port"] == served.started.port
    assert b"CUDA_VISIBLE_DEVICES=GPU-fake-2" in Path(f"/proc/{status['pid']}/environ").read_bytes().split(b"\0")
