"""The one module of error types.

Every error a user can cause carries three things: what is wrong, where (file and key, or the model/port
involved) and how to fix it. Only the CLI entry points turn these into exit codes and one-line messages;
library code raises, and never prints.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


class LocalcrewError(Exception):
    """Base class. `exit_code` is what the CLI exits with; 2 means bad input from the user."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " — ".join(parts)


class ConfigError(LocalcrewError):
    """A YAML file is malformed, has an unknown key, a missing key or a wrong type."""

    exit_code = 2


class UsageError(LocalcrewError):
    """A command-line argument is wrong."""

    exit_code = 2


class ModelError(LocalcrewError):
    """A model reference cannot be resolved, or its file cannot be read."""

    exit_code = 2


class SettingsError(LocalcrewError):
    """Run settings are impossible (e.g. quantized KV cache without flash attention)."""

    exit_code = 2


class HardwareError(LocalcrewError):
    """The GPU inventory cannot be read in a way the user must act on."""

    exit_code = 2


class InfeasiblePlanError(LocalcrewError):
    """No placement exists for some agent; the plan object carries the explanations."""

    exit_code = 1


class ServingError(LocalcrewError):
    """A model server could not be started, became unhealthy, or a port is taken."""

    exit_code = 1


class ServerCrashError(ServingError):
    """A model server crashed in a way that running it again would repeat (a fault signal, or an error exit
    not caused by memory), and no fallback on another binary or device is left. Exit 2: the user must act
    (rebuild, `bash scripts/setup.sh doctor`), as for bad input."""

    exit_code = 2


class RunAborted(BaseException):  # noqa: N818 - it is not an error of its own: it carries one
    """Carries an error through CrewAI, which catches `Exception` around every task and retries it (three
    crashes of a dead server, each printed). A BaseException passes, like Ctrl-C; the workflow writes the
    report and raises `error`."""

    def __init__(self, error: LocalcrewError) -> None:
        self.error = error
        super().__init__(error.one_line())


class BuildError(LocalcrewError):
    """The installed llama.cpp build cannot run on this machine (the set-up self-check or the doctor)."""

    exit_code = 2


class WorkflowError(LocalcrewError):
    """The crew's run failed for a reason other than failing tests (those are reported, not raised)."""

    exit_code = 1


class WorkspaceError(LocalcrewError):
    """A file operation would leave the run's workspace or break its limits (reported to the agent)."""

    exit_code = 2


class NetworkError(LocalcrewError):
    """A download source could not be reached (offline, refused, timed out); `fix` gives the command to
    run on a machine that can reach it."""

    exit_code = 1


class DiskFullError(LocalcrewError):
    """The disk (or the user's quota) filled up. Nothing half-written is kept, so the run can be resumed."""

    exit_code = 1


# ENOSPC: no space left on the device; EDQUOT: the user's quota is used up. Both are "the disk is full".
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def disk_full(path: str | os.PathLike[str] | None, *, run_dir: str | os.PathLike[str] | None = None,
              detail: str = "") -> DiskFullError:
    resume = f"`localcrew resume {run_dir}`" if run_dir is not None else "`localcrew resume RUN_DIR`"
    return DiskFullError(f"the disk is full{f' ({detail})' if detail else ''}; nothing half-written was kept",
                         where=str(path) if path is not None else None,
                         fix=f"free some space there, then continue the run with {resume}")


@contextlib.contextmanager
def disk_full_as_error(run_dir: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn an OSError for a full disk (from any write inside the block) into one DiskFullError line."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        if run_dir is None and exc.filename is not None:  # the run folder is the one holding run.jsonl
            run_dir = next((p for p in Path(os.fsdecode(exc.filename)).parents if (p / "run.jsonl").exists()), None)
        raise disk_full(exc.filename, run_dir=run_dir, detail=exc.strerror or "") from None
