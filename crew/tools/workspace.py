"""The run's workspace: the only folder agents may write to. Every refusal is a WorkspaceError the agent
can read (never a crash): absolute paths, `..`, symlinks that lead out, oversized files, and anything that
is not a plain-text file type.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from crew.errors import WorkspaceError

TEXT_SUFFIXES = frozenset({".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yaml", ".yml", ".csv"})
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".sandbox", ".git"})


class Workspace:
    def __init__(self, root: Path, *, max_file_bytes: int = 256_000) -> None:
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes

    def safe_path(self, rel: str) -> Path:
        """The absolute path for `rel`, or WorkspaceError saying why it is refused."""
        where = f"workspace path {rel!r}"
        if not rel or not rel.strip():
            raise WorkspaceError("empty file name", where=where, fix="name the file, e.g. calc.py")
        if "\\" in rel or "\0" in rel:
            raise WorkspaceError("backslashes and NUL are not allowed", where=where, fix="use a/b.py")
        pure = PurePosixPath(rel)
        if pure.is_absolute():
            raise WorkspaceError("absolute paths are refused", where=where,
                                 fix="give a path relative to the workspace, e.g. calc.py")
        if any(part == ".." for part in pure.parts):
            raise WorkspaceError("`..` would leave the workspace", where=where, fix="stay inside the workspace")
        if any(part in SKIP_DIRS or part.startswith(".") for part in pure.parts):
            raise WorkspaceError("hidden and tool folders are refused", where=where, fix="use a plain name")
        if pure.suffix.lower() not in TEXT_SUFFIXES:
            raise WorkspaceError(f"{pure.suffix or 'no suffix'} is not a plain-text file type", where=where,
                                 fix=f"use one of {', '.join(sorted(TEXT_SUFFIXES))}")
        target = self.root.joinpath(*pure.parts)
        # Resolve symlinks anywhere on the way: a link inside the workspace may point outside it.
        resolved = target.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise WorkspaceError("a symlink leads out of the workspace", where=where, fix="write a regular file")
        return target

    def write_text(self, rel: str, text: str) -> Path:
        path = self.safe_path(rel)
        data = text.encode("utf-8")
        if len(data) > self.max_file_bytes:
            raise WorkspaceError(f"{len(data)} bytes is over the {self.max_file_bytes}-byte limit",
                                 where=f"workspace path {rel!r}", fix="write a smaller file")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            raise WorkspaceError("refusing to write through a symlink", where=f"workspace path {rel!r}",
                                 fix="write a regular file")
        # O_NOFOLLOW: a symlink swapped in between the check and the write is refused, not followed.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return path

    def read_text(self, rel: str) -> str:
        path = self.safe_path(rel)
        if not path.is_file():
            raise WorkspaceError("no such file", where=f"workspace path {rel!r}", fix="list the files first")
        if path.stat().st_size > self.max_file_bytes:
            raise WorkspaceError("file is over the size limit", where=f"workspace path {rel!r}",
                                 fix="read a smaller file")
        return path.read_text(encoding="utf-8", errors="replace")

    def list_files(self) -> list[str]:
        out = []
        for p in self.root.rglob("*"):
            rel = p.relative_to(self.root)
            if p.is_file() and not p.is_symlink() and not SKIP_DIRS.intersection(rel.parts) \
                    and not any(part.startswith(".") for part in rel.parts):
                out.append(rel.as_posix())
        return sorted(out)
