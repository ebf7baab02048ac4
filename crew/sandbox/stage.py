"""The stage of one sandboxed run: a copy of the workspace, the inside's files, and how to start them.

The stage is a fresh temp folder: `work/` is all the tests may write (the staged code, home, tmp), `out/`
is ours (the inside's package and the config), `root/` is where the supervisor builds the new root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from crew.sandbox.names import refusal

# The inside (standard library only) is copied into out/ under this package name and started from there.
INSIDE_DIR = Path(__file__).with_name("inside")
INSIDE_PACKAGE = "localcrew_inside"
# `-I` leaves the script's folder and the working folder off sys.path, so the bootstrap puts out/ there; the
# worker takes it off again before any staged code runs (inside/worker.py: _forget_ourselves).
_BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv[1]); "
              f"from {INSIDE_PACKAGE}.supervisor import main; sys.exit(main(sys.argv[2]))")
# The staged folder's name: an identifier (a top-level __init__.py makes it a package) that no standard,
# runner or installed module has, and no agent may write (names.py refuses nothing with this prefix, but
# a model has no reason to invent it).
STAGE_NAME = "localcrew_answer"
_SKIP_COPY = frozenset({".sandbox", "__pycache__", ".pytest_cache", ".git"})


def copy_inside(out: Path) -> Path:
    """Every file of the inside package into `out/localcrew_inside/`; the folder to put on sys.path."""
    target = out / INSIDE_PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    for src in sorted(INSIDE_DIR.glob("*.py")):
        shutil.copyfile(src, target / src.name)
    return out


def boot_command(python: str, out: Path, config: Path) -> list[str]:
    """The command that starts the supervisor from the copy in `out`, isolated from the environment."""
    return [python, "-I", "-B", "-c", _BOOTSTRAP, str(out), str(config)]


def stage_copy(workspace: Path, code: Path) -> tuple[str, ...]:
    """Copy the workspace to `code`, leaving out what no agent may write; say what was left out and why."""
    refused: list[str] = []
    for dirpath, dirnames, filenames in os.walk(workspace):
        rel_dir = Path(dirpath).relative_to(workspace)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_COPY and not d.startswith("."))
        (code / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            src, rel = Path(dirpath, name), (rel_dir / name).as_posix()
            why = refusal(rel)
            if why is not None:
                refused.append(f"{rel}: left out of the test run: {why[0]}; fix: {why[1]}")
            elif src.is_symlink():
                target = os.readlink(src)
                resolved = src.resolve()
                if resolved == workspace or workspace in resolved.parents:
                    os.symlink(target, code / rel)
            elif src.is_file():
                shutil.copyfile(src, code / rel)
    return tuple(refused)


def chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            with contextlib.suppress(OSError):
                os.lchown(name, uid, uid)


def remove_tree(root: Path) -> None:
    def make_writable(_func: Any, path: str, _exc: Any) -> None:
        # A test may leave a folder without write permission; as a normal user rmtree needs it back.
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
        except OSError:
            pass

    shutil.rmtree(root, onerror=make_writable)
