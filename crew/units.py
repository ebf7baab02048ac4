"""Units and the few names every layer shares: sizes stay integer bytes inside and become GiB only in text.

Nothing here imports anything of ours, so any module may import it without making a cycle.
"""

from __future__ import annotations

GIB = 1024**3
GB = 1_000_000_000  # vendors' GB (bandwidth in GB/s)

# The host of a GPU on this machine: declared GPUs without `host:`, detected GPUs, and plans for them.
LOCAL = "local"
# Every server we start binds here, and every URL we build to reach one points here.
LOOPBACK = "127.0.0.1"


def gib(n_bytes: int | None, digits: int = 1, *, unit: bool = True, signed: bool = False,
        missing: str = "—") -> str:
    """Bytes as GiB for people: `gib(3 * GIB) == "3.0 GiB"`, `gib(GIB, 2, signed=True) == "+1.00 GiB"`.

    `None` (not measured, not known) is shown as `missing`; `unit=False` leaves out " GiB" for table
    columns whose header names the unit.
    """
    if n_bytes is None:
        return missing
    text = f"{n_bytes / GIB:{'+' if signed else ''}.{digits}f}"
    return f"{text} GiB" if unit else text
