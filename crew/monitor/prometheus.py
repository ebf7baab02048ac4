"""Prometheus metrics in the text exposition format (0.0.4), served by the standard library on loopback.

No prometheus_client: the format is a few lines per metric and http.server is enough for one scraper, so
`plan-gpus` gains no dependency. `render_metrics` is pure (samples in, text out); `MetricsServer` reads NVML
on each scrape, so the figures are as fresh as the scrape and nothing samples when nobody is looking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crew.monitor.live import GpuSample
from crew.units import LOOPBACK

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class PlannedAgent:
    agent: str
    model: str
    host: str
    gpu: str  # "0", "0,1" for a split, "cpu", "api"
    planned_bytes: int


# name, help, type, how to get the value from a sample (None: not reported by this GPU, line left out)
_GPU_METRICS: tuple[tuple[str, str, Callable[[GpuSample], float | None]], ...] = (
    ("localcrew_gpu_memory_used_bytes", "GPU memory in use (all processes).", lambda s: s.used_bytes),
    ("localcrew_gpu_memory_total_bytes", "GPU memory in total.", lambda s: s.total_bytes),
    ("localcrew_gpu_utilization_ratio", "GPU busy time over the last sample period, 0 to 1.",
     lambda s: s.util_pct / 100 if s.util_pct is not None else None),
    ("localcrew_gpu_temperature_celsius", "GPU core temperature.", lambda s: s.temp_c),
    ("localcrew_gpu_power_watts", "GPU power draw.",
     lambda s: s.power_mw / 1000 if s.power_mw is not None else None),
)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in kv.items()) + "}"


def _num(v: float) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def render_metrics(gpus: Iterable[GpuSample], agents: Iterable[PlannedAgent], *, host: str,
                   nvml_up: bool) -> str:
    gpus, out = list(gpus), []
    out += ["# HELP localcrew_nvml_up 1 when NVML could be read, 0 when not (no driver).",
            "# TYPE localcrew_nvml_up gauge", f"localcrew_nvml_up {int(nvml_up)}"]
    for name, help_text, get in _GPU_METRICS:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for s in gpus:
            value = get(s)
            if value is not None:
                labels = _labels(index=str(s.index), uuid=s.uuid or "", name=s.name, host=host)
                out.append(f"{name}{labels} {_num(value)}")
    out += ["# HELP localcrew_agent_planned_bytes Memory the plan gives each agent's model.",
            "# TYPE localcrew_agent_planned_bytes gauge"]
    for a in agents:
        labels = _labels(agent=a.agent, model=a.model, host=a.host, gpu=a.gpu)
        out.append(f"localcrew_agent_planned_bytes{labels} {a.planned_bytes}")
    return "\n".join(out) + "\n"


class MetricsServer:
    """`/metrics` on 127.0.0.1:`port` (0: any free port, see `.port`) in a daemon thread."""

    def __init__(self, port: int, collect: Callable[[], str]) -> None:
        lock = threading.Lock()  # NVML handles are shared: one scrape at a time

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics is served")
                    return
                with lock:
                    body = collect().encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # a scrape every 15 s would otherwise fill the terminal

        self._httpd = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def __enter__(self) -> MetricsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
