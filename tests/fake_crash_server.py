"""A stand-in for `python -m llama_cpp.server` whose build cannot run here: it starts, answers its model
list like llama-cpp-python's server, and on the first completion request kills itself with a fault signal
(SIGSEGV by default; FAKE_CRASH_SIGNAL names another) — what a native llama.cpp build does on its first
matrix product on a CPU that cannot run it. Every start is counted in FAKE_CRASH_STARTS (one line per start,
with its argv), so a test can tell how many servers of this "build" were started.

Started by tests as the server interpreter (LOCALCREW_SERVER_PYTHON points at a wrapper that runs this
file): it receives `-X faulthandler -m llama_cpp.server --host H --port P ...`.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def _arg(argv: list[str], name: str, default: str = "") -> str:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else default


def main(argv: list[str]) -> None:
    faulthandler.enable()
    port = int(_arg(argv, "--port", "0"))
    alias = _arg(argv, "--model_alias", "model")
    starts = os.environ.get("FAKE_CRASH_STARTS")
    if starts:
        with open(starts, "a", encoding="utf-8") as f:
            f.write(json.dumps(argv) + "\n")
    sig = getattr(signal, os.environ.get("FAKE_CRASH_SIGNAL", "SIGSEGV"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: object) -> None:
            print(fmt % args, flush=True)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = json.dumps({"object": "list", "data": [{"id": alias, "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/extras/"):
                self.do_GET()
                return
            print("llama_decode: first batch", flush=True)
            os.kill(os.getpid(), sig)

    print(f"fake llama.cpp server on 127.0.0.1:{port} serving {alias}", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
