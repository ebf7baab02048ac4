"""A loopback endpoint on the agents' machine per remote server, forwarding over Ray to its actor.

No model server listens on the network: agents talk to 127.0.0.1:<relay port> as they would to a local
server; the relay hands each request to the server's actor (crew/fleet/actors.py), which sends it to the
server on its own node's loopback. A request with `"stream": true` is relayed chunk by chunk as the server
sends it (the actor's `stream` is a Ray streaming generator), in HTTP/1.1 chunked encoding.

When the actor or its node fails, the agent gets an OpenAI-style error of type `relay_error`: a 502 (not to
be retried by the client: the failover router decides) or, in a stream already under way, an error event
that ends it. The agent's LLM takes either as "server unreachable" (crew/serving/llm.py: relay_lost).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from crew.serving.remote import RELAY_ERROR
from crew.units import LOOPBACK


def relay_error(exc: BaseException) -> dict[str, dict[str, str]]:
    """The OpenAI-style error body for an actor or node failure."""
    return {"error": {"message": f"relay: {type(exc).__name__}: {exc}"[:2000], "type": RELAY_ERROR}}


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


class Upstream(Protocol):
    """Where the relay sends requests: the server's actor (RayUpstream), or a test's fake."""

    def whole(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]: ...

    def stream(self, path: str, body: bytes) -> Iterator[bytes | tuple[int, str]]:
        """First (status, content type), then each chunk; raises when the actor or node fails."""
        ...


class RayUpstream:
    """The actor's `forward` and `stream` (a Ray streaming generator, one object per chunk)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def whole(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        import ray

        status, ctype, payload = ray.get(self.actor.forward.remote(method, path, body))
        return int(status), str(ctype), bytes(payload)

    def stream(self, path: str, body: bytes) -> Iterator[bytes | tuple[int, str]]:
        import ray

        for ref in self.actor.stream.options(num_returns="streaming").remote(path, body):
            yield ray.get(ref)


_CLIENT_GONE = (BrokenPipeError, ConnectionResetError)


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for litellm, chunked for streams

        def log_message(self, format: str, *args: Any) -> None:  # agents' requests are not our log
            return

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self) -> None:
            try:
                self._whole("GET", b"")
            except _CLIENT_GONE:
                self.close_connection = True

        def do_POST(self) -> None:
            # An agent that hangs up mid-answer (Ctrl-C, its own timeout) is nobody's error: no traceback,
            # and the actor's stream is closed so the server stops generating for nobody.
            try:
                body = self._body()
                if wants_stream(body):
                    self._stream(body)
                else:
                    self._whole("POST", body)
            except _CLIENT_GONE:
                self.close_connection = True

        def _fail(self, exc: Exception) -> None:
            """The actor or its node failed: an OpenAI-style error the agent's client reads, not a dropped
            connection; not retried by the client (x-should-retry: the router decides)."""
            payload = json.dumps(relay_error(exc)).encode()
            self.send_response(502)
            self.send_header("x-should-retry", "false")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _whole(self, method: str, body: bytes) -> None:
            try:
                status, ctype, payload = upstream.whole(method, self.path, body)
            except Exception as exc:  # RayError subclasses, and the server's own errors the actor raised
                self._fail(exc)
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, body: bytes) -> None:
            chunks = upstream.stream(self.path, body)
            try:
                head = next(chunks)
                assert isinstance(head, tuple), "a stream starts with its status"
                status, ctype = head
            except Exception as exc:  # nothing sent yet: an error answer is still possible
                self._fail(exc)
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in chunks:
                    if isinstance(chunk, bytes):
                        self._chunk(chunk)
            except _CLIENT_GONE:
                raise
            except Exception as exc:  # the node or actor failed mid-answer: an error event ends the stream
                self._chunk(b"\n\ndata: " + json.dumps(relay_error(exc)).encode() + b"\n\n")
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _chunk(self, chunk: bytes) -> None:
            self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()

    return Handler


class Relay:
    """One relay: started on a free loopback port (or `port`), served from a daemon thread. `actor` is the
    server's actor; `upstream` replaces it (tests)."""

    def __init__(self, server_id: str, actor: Any = None, port: int = 0, *, upstream: Upstream | None = None) -> None:
        self.httpd = ThreadingHTTPServer((LOOPBACK, port), _handler(upstream or RayUpstream(actor)))
        self.httpd.daemon_threads = True
        self.endpoint = RelayEndpoint(server_id, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"relay-{server_id}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
