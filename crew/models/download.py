"""Download one file over HTTP(S), resumable and checked (adapter: network and disk).

Made for Hugging Face's `resolve` URLs: the first answer (before its redirect to the CDN) carries
`X-Linked-Size` and `X-Linked-Etag`, the file's size and sha256; the download goes to `<dest>.part`,
continues a `.part` left by an interrupted run with a `Range` request, and is renamed into place only when
size, sha256 and the GGUF magic all match. A bad file is deleted, never used.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crew.errors import ModelError, NetworkError
from crew.models.embedded import sha256_of

OnBytes = Callable[[int, int | None], None]  # (bytes so far, total or None)
CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Remote:
    size_bytes: int | None
    sha256: str | None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the headers we want are on the redirect itself


def remote_info(url: str, timeout_s: float = 30.0) -> Remote:
    """Size and sha256 the server states for `url`, without downloading it."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, method="HEAD", headers={"Accept-Encoding": "identity"})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            headers = resp.headers
    except urllib.error.HTTPError as err:
        if err.code not in (301, 302, 303, 307, 308):
            raise
        headers = err.headers
    size = headers.get("X-Linked-Size") or headers.get("Content-Length")
    etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").removeprefix("W/").strip('"').lower()
    return Remote(int(size) if size and size.isdigit() else None, etag if _SHA256.fullmatch(etag) else None)


def fetch(url: str, dest: Path, *, on_bytes: OnBytes | None = None, timeout_s: float = 30.0) -> Path:
    """`url` into `dest`: resumed from `dest.part` when one is there; checked before it is renamed."""
    where = f"{url} → {dest}"
    try:
        remote = remote_info(url, timeout_s)
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _download(url, part, remote, on_bytes, timeout_s)
    except urllib.error.HTTPError as err:
        raise ModelError(f"the server answered {err.code} {err.reason}", where=url,
                         fix="check the model's repository and file name in crew/models/catalog.yaml, or "
                             "give a .gguf path in agents.yaml") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise NetworkError(f"cannot reach the download server ({reason})", where=url,
                           fix=f"on a machine with network: curl -L -C - -o '{dest.name}' '{url}', then copy "
                               f"the file to {dest.parent}/ and run this again") from None
    _check(part, remote, where)
    os.replace(part, dest)
    return dest


def _download(url: str, part: Path, remote: Remote, on_bytes: OnBytes | None, timeout_s: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    if remote.size_bytes is not None and have > remote.size_bytes:
        part.unlink()  # longer than the file: not a prefix of it
        have = 0
    headers = {"Accept-Encoding": "identity"}
    if have and (remote.size_bytes is None or have < remote.size_bytes):
        headers["Range"] = f"bytes={have}-"
    elif have == remote.size_bytes:
        return  # a previous run finished the bytes but not the check
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as resp:
        resumed = resp.status == 206
        mode = "ab" if resumed else "wb"  # a server that ignores Range sends the whole file again
        done = have if resumed else 0
        with open(part, mode) as out:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if on_bytes is not None:
                    on_bytes(done, remote.size_bytes)
            out.flush()
            os.fsync(out.fileno())


def _check(part: Path, remote: Remote, where: str) -> None:
    size = part.stat().st_size
    problem = None
    if remote.size_bytes is not None and size != remote.size_bytes:
        problem = f"{size} bytes, the server said {remote.size_bytes}"
    elif remote.sha256 is not None and (digest := sha256_of(part)) != remote.sha256:
        problem = f"sha256 {digest[:12]}…, the server said {remote.sha256[:12]}…"
    else:
        with open(part, "rb") as f:
            if f.read(4) != b"GGUF":
                problem = "not a GGUF file (no GGUF magic)"
    if problem:
        part.unlink()
        raise ModelError(f"the downloaded file is wrong: {problem}; it was deleted", where=where,
                         fix="run `plan-gpus pull` again; if it happens again the source has changed")
