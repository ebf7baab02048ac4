"""`python -m crew` — the `localcrew` command without an installed console script."""

from crew.main import localcrew

raise SystemExit(localcrew())
