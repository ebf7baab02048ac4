"""The worker, forked by the supervisor: it drops what it may do, then checks the modules and runs pytest.

Rlimits, the uid drop (as root) or the capability drop (root of a user namespace), `no_new_privs`, a
death signal and an audit hook; then syntax and import checks of each produced module, then pytest with
only our reporting plugin (`--noconftest`, our own ini, `--import-mode=importlib`, the staged folder
*after* site-packages on `sys.path`).
"""

from __future__ import annotations

import errno
import os
import re
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from .checks import Events, check_imports, check_syntax
from .kernel import PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, drop_capabilities, prctl
from .recorder import Recorder, plugins_wanted
from .rootfs import INI

_PRIVATE_PROC = re.compile(r"^/(proc/[^/]+|dev)/(mem|fd|fdinfo)(/.*)?$|^/proc/[^/]+/task/[^/]+/(mem|fd)(/.*)?$")
_BLOCKED_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"})


def worker(cfg: dict[str, Any], events_fd: int) -> int:  # pragma: no cover - runs in the sandboxed child
    for which, value in ((resource.RLIMIT_CPU, cfg["cpu_s"]), (resource.RLIMIT_AS, cfg["as_bytes"]),
                         (resource.RLIMIT_FSIZE, cfg["fsize_bytes"]), (resource.RLIMIT_NPROC, cfg["nproc"]),
                         (resource.RLIMIT_CORE, 0)):
        # The hard CPU limit one second later: SIGXCPU can be ignored, SIGKILL cannot.
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))
    if cfg["drop_uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["drop_uid"])
        os.setuid(cfg["drop_uid"])  # from root to non-root: all capabilities go too
    elif cfg["mount"]:
        drop_capabilities()  # root of a user namespace: keep the uid, lose what root may do
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the uid change cleared it
    prctl(PR_SET_NO_NEW_PRIVS, 1)             # no setuid binary gives anything back
    code = cfg["code"]
    os.chdir(code)
    events = Events(events_fd)
    if cfg["task"] == "probe":
        import pytest  # noqa: F401 - the probe proves pytest imports under this mode

        events.emit(e="probe")
        return 0
    import pytest

    _forget_ourselves()
    # After the standard library and site-packages, so nothing there can be hidden: the staged folder, and
    # (what pytest's default import mode would prepend) each folder of tests that is not a package.
    sys.path += [code, *sorted({str(p.parent) for p in Path(code).rglob("test_*.py")
                                if p.parent != Path(code) and not (p.parent / "__init__.py").exists()})]
    sys.addaudithook(_audit)
    good = check_syntax(code, events)
    check_imports(code, good, events)
    if cfg["task"] == "imports":
        return 0
    ini = INI if os.path.exists(INI) else cfg["ini"]
    args = [*plugins_wanted(Path(code)), "-c", ini, "--rootdir", code, "--noconftest", "-p", "no:cacheprovider",
            "--import-mode=importlib", *cfg["pytest_args"], code]
    return int(pytest.main(args, plugins=[Recorder(events)]))


def _forget_ourselves() -> None:
    """None of this package is reachable by name from the tests, and a stage module of the same name as one
    of ours (or as the folder it was copied to) is the agent's, not ours: out of `sys.modules` and
    `sys.path`. The functions already running keep their modules alive."""
    package = __name__.rpartition(".")[0]
    home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != home]
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    sys.modules["__main__"] = type(sys)("__main__")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse the usual ways from the code under test to the reporting plugin and its descriptor."""
    if event in _BLOCKED_EVENTS:
        raise RuntimeError(f"{event} is disabled in the test sandbox (it could reach the test reporter)")
    if event in ("open", "os.listdir") and args and isinstance(args[0], str | bytes) \
            and _PRIVATE_PROC.match(os.fsdecode(args[0])):
        raise PermissionError(errno.EACCES, "process memory and descriptors are off limits here",
                              os.fsdecode(args[0]))
