"""A local HTTP server that follows Ollama's documented API (docs/api.md), with scriptable state.

No real Ollama is available where these tests run, so this stands in for one. It follows the documentation
and the server's own handlers: NDJSON streams with chunked encoding; errors as `{"error": "..."}`, sent
with a status code when nothing was streamed yet and as a last NDJSON line once a stream has begun (as
Ollama's `streamResponse` does); `keep_alive` parsed like Go's durations; an empty prompt or message list
loads a model; a request at another `num_ctx` reloads it; OpenAI-style errors on `/v1`.

Scriptable: installed tags, the library that can be pulled (layers and sizes), offline registry, errors,
the memory a loaded model takes and how much of it spills to system RAM, load errors, a barrier that proves
loads on two servers overlap. Every request is recorded.

Run as a program (`fake_ollama.py serve`) it behaves like `ollama serve`: it listens on OLLAMA_HOST and
takes its context length and model limit from the environment, and it writes the environment it was given
to FAKE_OLLAMA_ENV_DUMP — which lets a test check what a real process receives. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FOREVER = "2318-04-11T23:47:16.854775807Z"   # what Ollama shows for keep_alive < 0 (now + MaxInt64 ns)
_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def canon(name: str) -> str:
    """Ollama's short name: case-insensitive, `latest` when no tag (kept independent of crew's own)."""
    name = name.strip().lower().removeprefix("registry.ollama.ai/").removeprefix("library/")
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def parse_keep_alive(value: Any) -> float | None:
    """Seconds to keep a model (None: forever), the way api.Duration unmarshals; ValueError as Go words it."""
    if isinstance(value, bool) or value is None:
        raise ValueError("invalid keep_alive")
    if isinstance(value, int | float):
        return None if value < 0 else float(value)
    if isinstance(value, str):
        body = value.lstrip("+-")
        if body == "0":                                   # Go accepts a bare zero
            return 0.0
        if not re.fullmatch(f"(?:{_PART})+", body):
            unit_missing = re.fullmatch(r"\d+(\.\d*)?", body) is not None
            raise ValueError(f'time: {"missing unit in" if unit_missing else "invalid"} duration "{value}"')
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(_PART, body))
        return None if value.startswith("-") else seconds
    raise ValueError(f"invalid keep_alive {value!r}")


@dataclass
class Layer:
    digest: str
    size: int


@dataclass
class Loaded:
    size: int
    size_vram: int
    context_length: int
    expires_at: str


@dataclass
class FakeOllama:
    version: str = "0.12.6"
    default_ctx: int = 4096                       # OLLAMA_CONTEXT_LENGTH of the server
    max_loaded_models: int | None = None          # OLLAMA_MAX_LOADED_MODELS; beyond it the oldest is evicted
    reply: str = "Hello from the fake Ollama."
    installed: dict[str, int] = field(default_factory=dict)         # tag -> bytes on disk
    library: dict[str, list[Layer]] = field(default_factory=dict)   # tags the registry can send
    offline: bool = False                          # the registry cannot be reached
    pull_error: tuple[int, str] | None = None      # fail /api/pull before anything is streamed
    spill: dict[str, int] = field(default_factory=dict)             # tag -> bytes left in system RAM on load
    load_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    load_barrier: threading.Barrier | None = None  # each load waits here: proves loads run concurrently
    loaded: dict[str, Loaded] = field(default_factory=dict)
    loads: list[tuple[str, int]] = field(default_factory=list)      # (tag, num_ctx) of every (re)load
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)  # each POST's Authorization header
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --------------------------------------------------------------------------------- scripting

    def add_model(self, tag: str, size: int) -> None:
        self.installed[canon(tag)] = size

    def add_to_library(self, tag: str, *layer_sizes: int) -> None:
        self.library[canon(tag)] = [Layer("sha256:" + hashlib.sha256(f"{tag}/{i}".encode()).hexdigest(), s)
                                    for i, s in enumerate(layer_sizes)]

    def set_loaded(self, tag: str, *, size: int, size_vram: int, context_length: int = 4096) -> None:
        self.loaded[canon(tag)] = Loaded(size, size_vram, context_length, FOREVER)

    def load(self, tag: str, num_ctx: int, keep_s: float | None) -> tuple[int, str] | None:
        """Ollama's scheduler, reuse a runner at the same num_ctx, else (re)load, evicting the oldest."""
        if tag in self.load_errors:
            return self.load_errors[tag]
        if self.load_barrier is not None:
            try:
                self.load_barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                return 500, "loads did not overlap (barrier broken)"
        with self._lock:
            expires = (FOREVER if keep_s is None
                       else (datetime.now(UTC) + timedelta(seconds=keep_s)).isoformat())
            current = self.loaded.get(tag)
            if current is not None and current.context_length == num_ctx:
                current.expires_at = expires
                return None
            self.loaded.pop(tag, None)
            if self.max_loaded_models is not None:
                while len(self.loaded) >= self.max_loaded_models:
                    self.loaded.pop(next(iter(self.loaded)))
            size = self.installed[tag] + num_ctx * 1024   # weights plus a made-up KV cache
            self.loaded[tag] = Loaded(size, size - self.spill.get(tag, 0), num_ctx, expires)
            self.loads.append((tag, num_ctx))
        return None

    # --------------------------------------------------------------------------------- lifetime

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeOllama:
        self._httpd = _Server((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        # A short poll interval: shutdown() waits up to one interval, and tests close many servers.
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="fake-ollama",
                         daemon=True).start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOllama:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self, path: str) -> list[Any]:
        return [body for _, p, body in self.requests if p == path]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _details() -> dict[str, Any]:
    return {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
            "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping a keep-alive connection is normal; like Go's server, say nothing about it.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"    # keep-alive and chunked streams, like Go's net/http
    server_version = ""

    @property
    def fake(self) -> FakeOllama:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    # ------------------------------------------------------------------------------- writing

    def _json(self, status: int, payload: Any, content_type: str = "application/json; charset=utf-8") -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _chunks(self, pieces: Iterable[bytes], content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _ndjson(self, events: Iterator[dict[str, Any]]) -> None:
        """Ollama's streamResponse: an error first is a status code, an error later a last NDJSON line."""
        first = next(events, None)
        if first is None:
            self._chunks([], "application/x-ndjson")
            return
        if "error" in first:
            self._error(500, first["error"])
            return

        def lines() -> Iterator[bytes]:
            yield json.dumps(first).encode() + b"\n"
            for event in events:
                yield json.dumps(event).encode() + b"\n"
                if "error" in event:
                    return
        self._chunks(lines(), "application/x-ndjson")

    # ------------------------------------------------------------------------------- routing

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            raise ValueError("missing request body")
        return json.loads(raw)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.fake.requests.append((self.command, self.path, None))
        fake = self.fake
        if self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        elif self.path == "/api/version":
            self._json(200, {"version": fake.version})
        elif self.path == "/api/tags":
            self._json(200, {"models": [
                {"name": tag, "model": tag, "modified_at": _now(), "size": size,
                 "digest": hashlib.sha256(tag.encode()).hexdigest(), "details": _details()}
                for tag, size in fake.installed.items()]})
        elif self.path == "/api/ps":
            with fake._lock:
                rows = list(fake.loaded.items())
            self._json(200, {"models": [
                {"name": tag, "model": tag, "size": m.size,
                 "digest": hashlib.sha256(tag.encode()).hexdigest(), "details": _details(),
                 "expires_at": m.expires_at, "size_vram": m.size_vram, "context_length": m.context_length}
                for tag, m in rows]})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": tag, "object": "model", "created": int(time.time()), "owned_by": "library"}
                for tag in fake.installed]})
        else:
            self._plain_404()

    def do_POST(self) -> None:
        self.fake.authorizations.append(self.headers.get("Authorization"))
        try:
            body = self._body()
        except ValueError as exc:   # json.JSONDecodeError is a ValueError
            self.fake.requests.append((self.command, self.path, None))
            self._error(400, str(exc) if "missing" in str(exc) else "invalid character in request body")
            return
        self.fake.requests.append((self.command, self.path, body))
        route = {"/api/pull": self._pull, "/api/generate": self._generate, "/api/chat": self._chat,
                 "/v1/chat/completions": self._openai_chat}.get(self.path)
        if route is None:
            self._plain_404()
        else:
            route(body)

    def _plain_404(self) -> None:
        data = b"404 page not found"     # gin's text answer for an unknown route
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # ------------------------------------------------------------------------------- /api/pull

    def _pull(self, body: dict[str, Any]) -> None:
        fake = self.fake
        name = str(body.get("model") or body.get("name") or "")
        if not name:
            self._error(400, "invalid model name")
            return
        tag = canon(name)
        events = self._pull_events(tag)
        if fake.pull_error is not None:
            self._error(*fake.pull_error)
        elif body.get("stream", True) is False:
            last: dict[str, Any] = {}
            for event in events:          # Ollama's waitForStream: the last status, or the error
                if "error" in event:
                    self._error(500, event["error"])
                    return
                last = event
            self._json(200, last)
        else:
            self._ndjson(events)

    def _pull_events(self, tag: str) -> Iterator[dict[str, Any]]:
        fake = self.fake
        yield {"status": "pulling manifest"}
        model, _, version = tag.partition(":")
        if fake.offline:
            yield {"error": f'pull model manifest: Get "https://registry.ollama.ai/v2/library/{model}/'
                            f'manifests/{version}": dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: '
                            "server misbehaving"}
            return
        if tag not in fake.library:
            yield {"error": "pull model manifest: file does not exist"}
            return
        for layer in fake.library[tag]:
            short = layer.digest[7:19]
            yield {"status": f"pulling {short}", "digest": layer.digest, "total": layer.size}
            for done in (layer.size // 3, 2 * layer.size // 3, layer.size):
                yield {"status": f"pulling {short}", "digest": layer.digest, "total": layer.size,
                       "completed": done}
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        yield {"status": "removing any unused layers"}
        fake.installed[tag] = sum(layer.size for layer in fake.library[tag])
        yield {"status": "success"}

    # ------------------------------------------------------------------------------- inference

    def _prepare(self, body: dict[str, Any]) -> str | None:
        """Check the model and load it; on any error answer it and return None."""
        name = str(body.get("model") or "")
        if not name:
            self._error(400, "model is required")
            return None
        tag = canon(name)
        if tag not in self.fake.installed:
            self._error(404, f"model '{name}' not found")
            return None
        try:
            keep_s = parse_keep_alive(body["keep_alive"]) if "keep_alive" in body else 300.0
        except ValueError as exc:
            self._error(400, str(exc))
            return None
        options = body.get("options") or {}
        ctx = int(options.get("num_ctx", self.fake.default_ctx))
        failure = self.fake.load(tag, ctx, keep_s)
        if failure is not None:
            self._error(*failure)
            return None
        return name

    def _generate(self, body: dict[str, Any]) -> None:
        name = self._prepare(body)
        if name is None:
            return
        if not body.get("prompt"):
            self._json(200, {"model": name, "created_at": _now(), "response": "", "done": True,
                             "done_reason": "load"})
            return
        self._answer(name, body, lambda piece: {"response": piece})

    def _chat(self, body: dict[str, Any]) -> None:
        name = self._prepare(body)
        if name is None:
            return
        if not body.get("messages"):
            self._json(200, {"model": name, "created_at": _now(),
                             "message": {"role": "assistant", "content": ""}, "done_reason": "load",
                             "done": True})
            return
        self._answer(name, body, lambda piece: {"message": {"role": "assistant", "content": piece}})

    def _answer(self, name: str, body: dict[str, Any], shape: Any) -> None:
        stats = {"total_duration": 1_000_000, "load_duration": 1_000, "prompt_eval_count": 10,
                 "prompt_eval_duration": 100_000, "eval_count": len(self.fake.reply.split()),
                 "eval_duration": 800_000}
        if body.get("stream", True) is False:
            self._json(200, {"model": name, "created_at": _now(), **shape(self.fake.reply), "done": True,
                             "done_reason": "stop", **stats})
            return

        def events() -> Iterator[dict[str, Any]]:
            for word in self.fake.reply.split(" "):
                yield {"model": name, "created_at": _now(), **shape(word + " "), "done": False}
            yield {"model": name, "created_at": _now(), **shape(""), "done": True, "done_reason": "stop",
                   **stats}
        self._ndjson(events())

    def _openai_chat(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or "")
        tag = canon(name) if name else ""
        if tag not in self.fake.installed:
            self._json(404, {"error": {"message": f"model '{name}' not found", "type": "not_found_error",
                                       "param": None, "code": None}})
            return
        # No num_ctx here: the model runs at the server's context length (a reload if loaded otherwise).
        failure = self.fake.load(tag, self.fake.default_ctx, 300.0)
        if failure is not None:
            self._json(failure[0], {"error": {"message": failure[1], "type": "api_error", "param": None,
                                              "code": None}})
            return
        ident, created = f"chatcmpl-{int(time.time() * 1000) % 1000}", int(time.time())
        words = self.fake.reply.split(" ")
        if not body.get("stream"):
            self._json(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": name,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.fake.reply},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(words),
                          "total_tokens": 10 + len(words)}})
            return

        def sse() -> Iterator[bytes]:
            for i, word in enumerate(words + [""]):
                last = i == len(words)
                chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": name,
                         "system_fingerprint": "fp_ollama",
                         "choices": [{"index": 0, "delta": {"role": "assistant",
                                                            "content": "" if last else word + " "},
                                      "finish_reason": "stop" if last else None}]}
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        self._chunks(sse(), "text/event-stream")


def main(argv: list[str]) -> int:
    """`fake_ollama.py serve`, configured by the environment like `ollama serve`."""
    if argv[1:] != ["serve"]:
        print("usage: ollama serve", file=sys.stderr)
        return 2
    dump = os.environ.get("FAKE_OLLAMA_ENV_DUMP")
    if dump:
        with open(dump, "w", encoding="utf-8") as out:
            json.dump({k: v for k, v in os.environ.items() if k.startswith(("OLLAMA_", "CUDA_"))}, out)
    if os.environ.get("FAKE_OLLAMA_HANG"):     # a server that never answers
        time.sleep(3600)
        return 1
    host, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    fake = FakeOllama(default_ctx=int(os.environ.get("OLLAMA_CONTEXT_LENGTH", "4096")))
    # Scripting for end-to-end runs: tags the "registry" can send, and the reply every chat gets.
    for tag in filter(None, os.environ.get("FAKE_OLLAMA_LIBRARY", "").split(",")):
        fake.add_to_library(tag, 4_000_000, 1_000)
    if os.environ.get("FAKE_OLLAMA_REPLY"):
        fake.reply = os.environ["FAKE_OLLAMA_REPLY"]
    if os.environ.get("OLLAMA_MAX_LOADED_MODELS"):
        fake.max_loaded_models = int(os.environ["OLLAMA_MAX_LOADED_MODELS"])
    print(f"Listening on {host}:{port} (version {fake.version})", flush=True)
    fake.start(host, int(port))
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
