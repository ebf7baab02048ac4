"""crew/fleet without a cluster: the pure parts, and `plan-gpus` never loading ray."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from crew.config.layout import load_layout
from crew.errors import ConfigError
from crew.fleet.actors import for_this_node, pinned_uuids
from crew.fleet.cluster import auth_mode, token_auth_supported
from crew.fleet.probe import (
    DECLARED_NAME,
    NodeGpus,
    gpu_resource,
    gpus_from_resources,
    host_names,
    inventory_gpus,
    node_gpus,
)
from crew.fleet.relay import wants_stream
from crew.hardware.types import GpuInfo
from crew.serving.spec import LaunchSpec, ServedModel, llamacpp_spec
from crew.units import GIB, LOCAL

ROOT = Path(__file__).resolve().parents[1]


def test_plan_gpus_never_imports_ray() -> None:
    code = ("import sys; from crew.cli import main; rc = main(['--profile', '2x-rtx3060', '--json']); "
            "print('RAY' if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 'NO-RAY', "
            "file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["servers"]  # a real plan was made
    assert proc.stderr.strip().splitlines()[-1] == "NO-RAY"


def test_declared_resources_become_gpus_in_uuid_order() -> None:
    res = {"CPU": 1.0, gpu_resource("GPU-b"): 1.0, gpu_resource("GPU-a"): 1.0, "gpu_gib:GPU-a": 12.0}
    gpus = gpus_from_resources(res, "box")
    assert [(g.index, g.uuid, g.total_bytes, g.host, g.name) for g in gpus] == [
        (0, "GPU-a", 12 * GIB, "box", DECLARED_NAME), (1, "GPU-b", 0, "box", DECLARED_NAME)]


def test_nvml_cards_win_and_undeclared_ones_are_named() -> None:
    seen = (GpuInfo(0, "NVIDIA GeForce RTX 3060", 12 * GIB, uuid="GPU-x"),
            GpuInfo(1, "NVIDIA GeForce RTX 3060", 12 * GIB, uuid="GPU-y"))
    node = node_gpus("n1", "10.0.0.2", "rig", {gpu_resource("GPU-x"): 1.0}, seen, "")
    assert node.source == "nvml" and [g.host for g in node.gpus] == ["rig", "rig"]
    assert "GPU-y" in node.note and "GPU-x" not in node.note
    empty = node_gpus("n2", "10.0.0.3", "cpu-box", {"CPU": 2.0}, (), "NVML reports no GPUs")
    assert empty.source == "none" and empty.gpus == () and empty.note == "NVML reports no GPUs"


def test_nodes_on_one_machine_get_distinct_host_names_and_this_one_is_local() -> None:
    nodes = [("aaaaaa11", "ci"), ("bbbbbb22", "ci"), ("cccccc33", "rig")]
    assert host_names(nodes) == {"aaaaaa11": "ci-aaaaaa", "bbbbbb22": "ci-bbbbbb", "cccccc33": "rig"}
    assert host_names(nodes, "bbbbbb22") == {"aaaaaa11": "ci-aaaaaa", "bbbbbb22": LOCAL, "cccccc33": "rig"}


def test_the_inventory_lists_this_machines_cards_first_with_each_nodes_note() -> None:
    card = GpuInfo(0, DECLARED_NAME, 12 * GIB, uuid="GPU-r")
    nodes = [NodeGpus("n2", "10.0.0.9", "rig", (replace(card, host="rig"),), "ray resources"),
             NodeGpus("n3", "10.0.0.8", "cpu-box", (), "none", "NVML reports no GPUs"),
             NodeGpus("n1", "10.0.0.2", LOCAL, (replace(card, uuid="GPU-l"),), "ray resources")]
    gpus, notes = inventory_gpus(nodes)
    assert [(g.host, g.uuid) for g in gpus] == [(LOCAL, "GPU-l"), ("rig", "GPU-r")]
    assert notes == ("cpu-box: NVML reports no GPUs",)


@pytest.mark.parametrize(("raw", "address"), [("auto", "auto"), (" 10.0.0.2:6379 ", "10.0.0.2:6379"),
                                              ("head.lan:6380", "head.lan:6380"), ("[::1]:6379", "[::1]:6379")])
def test_the_layout_names_a_cluster(tmp_path: Path, raw: str, address: str) -> None:
    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text(f"cluster: {json.dumps(raw)}\n")
    assert load_layout(layout).cluster == address
    layout.write_text("backend: llamacpp\n")
    assert load_layout(layout).cluster is None


@pytest.mark.parametrize("raw", ["6379", '"head"', '"head:"', '"head:99999"', '":6379"', '"ray://head:10001"',
                                 '"head:63x9"', "[head, 6379]", '"a b:6379"'])
def test_a_bad_cluster_is_one_line_naming_the_key_and_the_fix(tmp_path: Path, raw: str) -> None:
    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text(f"cluster: {raw}\n")
    with pytest.raises(ConfigError) as info:
        load_layout(layout)
    line = info.value.one_line()
    assert line.startswith("gpu_layout.yaml: cluster") and "fix:" in line and "`cluster: auto`" in line
    assert info.value.exit_code == 2 and "\n" not in line


def test_a_cluster_and_declared_gpus_do_not_mix(tmp_path: Path) -> None:
    layout = tmp_path / "gpu_layout.yaml"
    layout.write_text("cluster: auto\ngpus: [{name: RTX 3060, memory_gib: 12}]\n")
    with pytest.raises(ConfigError, match="gpu_layout.yaml: cluster: a cluster names its GPUs itself"):
        load_layout(layout)


def test_plan_gpus_with_a_bad_cluster_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "gpu_layout.yaml").write_text("cluster: headnode\n")
    proc = subprocess.run([sys.executable, "-c", "import sys; from crew.cli import main; sys.exit(main())",
                           "--layout", str(tmp_path / "gpu_layout.yaml"), "--agents", str(ROOT / "agents.yaml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "gpu_layout.yaml: cluster: 'headnode' is neither `auto` nor host:port" in lines[0]


def _spec(pinning: str, *, gpu_uuids: tuple[str, ...] = (), simulated: bool = False) -> LaunchSpec:
    return llamacpp_spec("gpu1", (ServedModel("m", "/models/m.gguf", 512),), 11500,
                         env={"CUDA_VISIBLE_DEVICES": pinning}, gpu_uuids=gpu_uuids, simulated=simulated,
                         python="/planner/.venv/bin/python")


def test_a_spec_claims_its_uuids_or_its_simulated_pinning() -> None:
    assert pinned_uuids(_spec("GPU-1,GPU-2", gpu_uuids=("GPU-1", "GPU-2"))) == ("GPU-1", "GPU-2")
    sim = replace(_spec("GPU-fake-2", simulated=True), planned_pinning="GPU-fake-2")
    assert pinned_uuids(sim) == ("GPU-fake-2",)
    assert pinned_uuids(_spec("0")) == ()  # an index is no card a resource can name


def test_on_the_node_the_spec_runs_its_python_on_a_free_port() -> None:
    moved = for_this_node(_spec("GPU-1"), "/node/venv/bin/python", 11507)
    assert moved.argv[0] == "/node/venv/bin/python" and moved.port == 11507
    assert moved.argv[moved.argv.index("--port") + 1] == "11507"
    assert moved.env == {"CUDA_VISIBLE_DEVICES": "GPU-1"}  # the pinning travels untouched


def test_only_stream_true_is_streamed() -> None:
    assert wants_stream(b'{"model": "m", "stream": true}')
    assert not wants_stream(b'{"model": "m", "stream": false}')
    assert not wants_stream(b"not json") and not wants_stream(b"")


def test_token_auth_is_asked_for_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    assert token_auth_supported()  # the locked Ray (2.60) has it
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert auth_mode() is True
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert auth_mode() is False


def test_the_seed_fleet_plans_over_four_workstations_and_leaves_the_laptop_gpu_out() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys; from crew.cli import main; sys.exit(main())",
                           "--profile", "fleet-5", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    excluded = {(g["host"], g["name"]): g["exclusion_reason"] for g in plan["gpus"] if g["excluded"]}
    assert excluded == {("local", "NVIDIA GeForce RTX 3050 Laptop GPU"):
                        "4 GB laptop GPU: its agents use their API endpoint",
                        ("ws2", "NVIDIA GeForce RTX 5060 Ti"):
                        "compute capability 12.0: this llama.cpp build has no sm_120 kernels"}
    assert {g["host"] for g in plan["gpus"]} == {"ws1", "ws2", "ws3", "ws4", "local"}  # five machines
    assert plan["feasible"] and all(a["host"].startswith("ws") for a in plan["agents"])
    assert all(s["host"] != "local" for s in plan["servers"])  # every server is a remote one: a fleet run
