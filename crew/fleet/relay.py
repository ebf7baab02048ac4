"""A loopback endpoint on the agents' machine per remote server, forwarding over Ray to its actor.

No model server listens on the network: agents talk to 127.0.0.1:<relay port> as they would to a local
server; the relay hands each request to the server's actor (crew/fleet/actors.py), which sends it to the
server on its own node's loopback. A request with `"stream": true` is relayed chunk by chunk as the server
sends it (the actor's `stream` is a Ray streaming generator), in HTTP/1.1 chunked encoding.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crew.units import LOOPBACK


def wants_stream(body: bytes) -> bool:
    """An OpenAI-style request that asks for server-sent events."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("stream") is True


@dataclass(frozen=True)
class RelayEndpoint:
    server_id: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def _handler(actor: Any) -> type[BaseHTTPRequestHandler]:
    import ray

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for litellm, chunked for streams

        def log_message(self, format: str, *args: Any) -> None:  # agents' requests are not our log
            return

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self) -> None:
            self._whole("GET", b"")

        def do_POST(self) -> None:
            body = self._body()
            if wants_stream(body):
                self._stream(body)
            else:
                self._whole("POST", body)

        def _fail(self, exc: Exception) -> None:
            """The actor or its node failed: an OpenAI-style error the agent's client reads, not a dropped
            connection."""
            payload = json.dumps({"error": {"message": f"relay: {type(exc).__name__}: {exc}"[:2000],
                                            "type": "relay_error"}}).encode()
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _whole(self, method: str, body: bytes) -> None:
            try:
                status, ctype, payload = ray.get(actor.forward.remote(method, self.path, body))
            except Exception as exc:  # RayError subclasses, and the server's own errors the actor raised
                self._fail(exc)
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, body: bytes) -> None:
            chunks = actor.stream.options(num_returns="streaming").remote(self.path, body)
            try:
                status, ctype = ray.get(next(chunks))
            except Exception as exc:  # nothing sent yet: an error answer is still possible
                self._fail(exc)
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for ref in chunks:
                chunk: bytes = ray.get(ref)
                self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


class Relay:
    """One relay: started on a free loopback port (or `port`), served from a daemon thread."""

    def __init__(self, server_id: str, actor: Any, port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer((LOOPBACK, port), _handler(actor))
        self.httpd.daemon_threads = True
        self.endpoint = RelayEndpoint(server_id, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"relay-{server_id}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
