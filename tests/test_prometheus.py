"""The Prometheus endpoint, scraped for real over loopback (no prometheus_client: our own text format)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from crew.monitor.live import open_live, read_gpus
from crew.monitor.prometheus import CONTENT_TYPE, MetricsServer, PlannedAgent, render_metrics
from tests.conftest import cli_args
from tests.layouts import GIB
from tests.monitor_fakes import FakeLiveNvml, three_gpus

# one sample line of the text format: name{labels} value
_LINE = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (\S+)$')


def scrape(port: int, path: str = "/metrics") -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.headers["Content-Type"], resp.read().decode("utf-8")


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        if "{" not in line:
            name, value = line.split(" ")
            out[(name, frozenset())] = float(value)
            continue
        m = _LINE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def test_scrape_over_loopback() -> None:
    nvml = three_gpus()
    assert open_live(nvml) == ""
    agents = [PlannedAgent("coder", "qwen2.5-coder:14b", "local", "0", 9 * GIB)]

    def collect() -> str:
        return render_metrics(read_gpus(nvml).gpus, agents, host="ws1", nvml_up=True)

    with MetricsServer(0, collect) as server:
        ctype, body = scrape(server.port)
        nvml.live[0].util = 12  # each scrape reads NVML afresh
        _, body2 = scrape(server.port)
        with pytest.raises(urllib.error.HTTPError) as err:
            scrape(server.port, "/other")
        assert err.value.code == 404
    assert ctype == CONTENT_TYPE
    m = parse(body)
    gpu0 = frozenset({("index", "0"), ("uuid", "GPU-3090-0000"), ("name", "NVIDIA GeForce RTX 3090"),
                      ("host", "ws1")})
    assert m[("localcrew_nvml_up", frozenset())] == 1
    assert m[("localcrew_gpu_memory_total_bytes", gpu0)] == 24576 * 1024**2
    assert m[("localcrew_gpu_memory_used_bytes", gpu0)] == 400 * 1024**2
    assert m[("localcrew_gpu_utilization_ratio", gpu0)] == 0.97
    assert m[("localcrew_gpu_temperature_celsius", gpu0)] == 71
    assert m[("localcrew_gpu_power_watts", gpu0)] == 150
    agent = frozenset({("agent", "coder"), ("model", "qwen2.5-coder:14b"), ("host", "local"), ("gpu", "0")})
    assert m[("localcrew_agent_planned_bytes", agent)] == 9 * GIB
    # GPU 2's temperature query fails: its line is left out rather than reported as 0
    temps = [k for k in m if k[0] == "localcrew_gpu_temperature_celsius"]
    assert len(temps) == 2
    assert parse(body2)[("localcrew_gpu_utilization_ratio", gpu0)] == 0.12
    # every metric family is declared once, HELP then TYPE
    assert body.count("# TYPE localcrew_gpu_power_watts gauge") == 1


def test_label_values_are_escaped() -> None:
    text = render_metrics([], [PlannedAgent('a"b\\c\nd', "m", "local", "cpu", 1)], host="h", nvml_up=False)
    assert 'agent="a\\"b\\\\c\\nd"' in text
    assert parse(text)[("localcrew_nvml_up", frozenset())] == 0


def test_no_driver_serves_nvml_down(capsys) -> None:  # type: ignore[no-untyped-def]
    """`monitor --prometheus` without a driver keeps serving, with localcrew_nvml_up 0 and no GPU lines."""
    nvml = FakeLiveNvml(fail="the NVIDIA driver is not installed")
    note = open_live(nvml)
    with MetricsServer(0, lambda: render_metrics((), [], host="h", nvml_up=not note)) as server:
        _, body = scrape(server.port)
    assert parse(body) == {("localcrew_nvml_up", frozenset()): 0.0}


def test_port_in_use_is_a_usage_error() -> None:
    from crew.cli.monitor import run_monitor
    from crew.errors import UsageError

    with MetricsServer(0, lambda: "") as busy, pytest.raises(UsageError, match="cannot listen"):
        run_monitor(cli_args("monitor", interval=1.0, prometheus=busy.port), provider=three_gpus())
