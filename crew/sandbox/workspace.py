"""The run's workspace: the only folder agents may write to.

Every refusal is a WorkspaceError whose message the agent can read and act on (never a crash): absolute
paths, `..`, hidden or tool folders, symlinks that lead out, oversized files, binary content, anything
that is not a plain-text file type, files that would configure pytest or Python (`conftest.py`,
`pytest.ini`, …) and modules that would hide a standard, runner or installed module (`random.py`).
No crewai import here: the fenced-code-block path uses this module too.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from crew.errors import WorkspaceError
from crew.sandbox.names import refusal

TEXT_SUFFIXES = frozenset({".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yaml", ".yml", ".csv"})
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".sandbox", ".git"})
MAX_NAME_CHARS = 200


class Workspace:
    def __init__(self, root: Path, *, max_file_bytes: int = 256_000) -> None:
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes

    def safe_path(self, rel: str) -> Path:
        """The absolute path for `rel`, or WorkspaceError saying why it is refused."""
        where = f"workspace path {rel!r}"
        if not rel or not rel.strip():
            raise WorkspaceError("empty file name", where=where, fix="name the file, e.g. calc.py")
        if len(rel) > MAX_NAME_CHARS or any(ord(c) < 32 or c in "\\\x7f" for c in rel):
            raise WorkspaceError("names must be short, with no backslash or control characters",
                                 where=where, fix="use a plain relative name such as pkg/calc.py")
        pure = PurePosixPath(rel)
        if pure.is_absolute():
            raise WorkspaceError("absolute paths are refused", where=where,
                                 fix="give a path relative to the workspace, e.g. calc.py")
        if ".." in pure.parts:
            raise WorkspaceError("`..` would leave the workspace", where=where,
                                 fix="stay inside the workspace")
        if any(part.startswith(".") or part in SKIP_DIRS for part in pure.parts):
            raise WorkspaceError("hidden and tool folders are refused", where=where, fix="use a plain name")
        if pure.suffix.lower() not in TEXT_SUFFIXES:
            raise WorkspaceError(f"{pure.suffix or 'a name without suffix'} is not a plain-text file type",
                                 where=where, fix=f"use one of {', '.join(sorted(TEXT_SUFFIXES))}")
        target = self.root.joinpath(*pure.parts)
        # resolve() follows every symlink on the way: a link inside the workspace may point outside it.
        resolved = target.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise WorkspaceError("a symlink leads out of the workspace", where=where,
                                 fix="use a regular file inside the workspace")
        return target

    def check_write(self, rel: str, text: str) -> Path:
        """Every check a write must pass, without writing (the langchain-backed tool calls this first)."""
        path = self.safe_path(rel)
        where = f"workspace path {rel!r}"
        refused = refusal(rel)
        if refused is not None:  # config files and modules that would hide others (crew/sandbox/names.py)
            raise WorkspaceError(refused[0], where=where, fix=refused[1])
        size = len(text.encode("utf-8", errors="replace"))
        if size > self.max_file_bytes:
            raise WorkspaceError(f"{size} bytes is over the {self.max_file_bytes}-byte limit",
                                 where=where, fix="write a smaller file, or split it")
        if "\0" in text:
            raise WorkspaceError("NUL characters: this is not plain text", where=where, fix="write text only")
        if path.is_symlink():
            raise WorkspaceError("refusing to write through a symlink", where=where,
                                 fix="write a regular file")
        if path.exists() and not path.is_file():
            raise WorkspaceError("a folder has that name", where=where, fix="choose another name")
        return path

    def check_read(self, rel: str) -> Path:
        """Every check a read must pass before any byte is read."""
        path = self.safe_path(rel)
        where = f"workspace path {rel!r}"
        if path.is_symlink() or not path.is_file():
            raise WorkspaceError("no such regular file", where=where, fix="list the files first")
        if path.stat().st_size > self.max_file_bytes:
            raise WorkspaceError(f"file is over the {self.max_file_bytes}-byte limit", where=where,
                                 fix="read a smaller file")
        return path

    def write_text(self, rel: str, text: str) -> Path:
        path = self.check_write(rel, text)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a symlink swapped in between the check and the write is refused, not followed.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8", errors="replace"))
        except OSError as exc:
            raise WorkspaceError(f"cannot write: {exc.strerror or exc}", where=f"workspace path {rel!r}",
                                 fix="choose another name (is a file in the way of a folder?)") from None
        return path

    def replace_text(self, rel: str, text: str) -> Path:
        """`write_text`, atomically: a temporary file beside it, flushed, then renamed over it. A kill at any
        moment leaves the old file or the new one whole, never a mix (the delivered module: crew/run/ledger.py).
        """
        path = self.check_write(rel, text)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8", errors="replace"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # a symlink put at `path` meanwhile is replaced, never followed
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise WorkspaceError(f"cannot write: {exc.strerror or exc}", where=f"workspace path {rel!r}",
                                 fix="choose another name (is a file in the way of a folder?)") from None
        return path

    def read_text(self, rel: str) -> str:
        path = self.check_read(rel)
        where = f"workspace path {rel!r}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)  # the file may have grown since the check
        except OSError as exc:
            raise WorkspaceError(f"cannot read: {exc.strerror or exc}", where=where,
                                 fix="read a regular file inside the workspace") from None
        return self.check_text(rel, data)

    def check_text(self, rel: str, data: bytes) -> str:
        """Content read from a file, refused if it is too big or binary."""
        where = f"workspace path {rel!r}"
        if len(data) > self.max_file_bytes:
            raise WorkspaceError(f"file is over the {self.max_file_bytes}-byte limit", where=where,
                                 fix="read a smaller file")
        if b"\0" in data:
            raise WorkspaceError("binary content: not a plain-text file", where=where,
                                 fix="read text files only")
        return data.decode("utf-8", errors="replace")

    def list_files(self) -> list[str]:
        """Regular files, relative and sorted; caches, hidden folders and symlinks left out."""
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):  # does not follow symlinked folders
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
            for name in filenames:
                full = Path(dirpath, name)
                if not name.startswith(".") and full.is_file() and not full.is_symlink():
                    out.append(full.relative_to(self.root).as_posix())
        return sorted(out)
