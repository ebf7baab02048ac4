"""A local HTTP server with Hugging Face's download shapes, for `plan-gpus pull` without a network.

`HEAD|GET /<owner>/<repo>/resolve/main/<file>` answers 302 to `/cdn/<sha256>` with `X-Linked-Etag` (the
file's sha256) and `X-Linked-Size`, as huggingface.co does for LFS files; the CDN path serves the bytes and
honours `Range: bytes=N-` with 206. Every file name gets the same bytes (`payload`). Loopback only.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeHf:
    payload: bytes
    corrupt: bool = False  # flip one byte of what the CDN sends (the etag stays the real file's)
    ignore_range: bool = False
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    served_bytes: int = 0
    _httpd: ThreadingHTTPServer | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeHf:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, *, body: bool) -> None:
                fake.requests.append((self.command, self.path, self.headers.get("Range")))
                if re.fullmatch(r"/[^/]+/[^/]+/resolve/main/[^/]+\.gguf", self.path):
                    self.send_response(302)
                    self.send_header("Location", f"/cdn/{fake.sha256}")
                    self.send_header("X-Linked-Etag", f'"{fake.sha256}"')
                    self.send_header("X-Linked-Size", str(len(fake.payload)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != f"/cdn/{fake.sha256}":
                    self.send_error(404)
                    return
                data = bytearray(fake.payload)
                if fake.corrupt:
                    data[len(data) // 2] ^= 0xFF
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m and not fake.ignore_range:
                    start = int(m.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if body:
                    self.wfile.write(bytes(data[start:]))
                    fake.served_bytes += len(data) - start

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()
