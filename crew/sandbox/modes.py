"""The launch modes of the sandbox, from most to least contained, and the one this machine allows.

As root: `unshare` with network, PID, mount and IPC namespaces, the worker dropped to `nobody`; as a
normal user the same in a fresh user namespace (`--user --map-root-user`). Without `unshare`, a plain
child with no network isolation, which every report then says.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

SANDBOX_UID = 65534                                    # nobody


@dataclass(frozen=True)
class SandboxMode:
    """One way of launching the child, from most to least contained."""
    prefix: tuple[str, ...]
    mount: bool
    drop_uid: int | None
    fresh_userns: bool
    note: str = ""

    @property
    def network_isolated(self) -> bool:
        return bool(self.prefix)

    def describe(self) -> str:
        parts = ["network, PID, IPC and mount namespaces; a new root with only the stage, the interpreter "
                 "and its packages" if self.mount else "NO network isolation (unshare is not allowed here)"]
        if self.drop_uid is not None:
            parts.append(f"runs as uid {self.drop_uid}")
        elif os.geteuid() == 0 and not self.fresh_userns:
            parts.append("runs as ROOT: the process-count limit is not enforced")
        if self.fresh_userns:
            parts.append("user namespace")
        return "; ".join(parts) + (f" ({self.note})" if self.note else "")



def candidate_modes() -> list[SandboxMode]:
    """The launch modes to try, most contained first; `sandbox_mode` keeps the first that works."""
    unshare = shutil.which("unshare")
    ns = ["--mount", "--net", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc"]
    modes = []
    if os.geteuid() == 0:
        if unshare:
            modes.append(SandboxMode((unshare, *ns), mount=True, drop_uid=SANDBOX_UID, fresh_userns=False))
        modes += [SandboxMode((), mount=False, drop_uid=SANDBOX_UID, fresh_userns=False),
                  SandboxMode((), mount=False, drop_uid=None, fresh_userns=False)]
    else:
        if unshare:
            modes.append(SandboxMode((unshare, "--user", "--map-root-user", *ns), mount=True, drop_uid=None,
                                     fresh_userns=True))
        modes.append(SandboxMode((), mount=False, drop_uid=None, fresh_userns=False))
    return modes

