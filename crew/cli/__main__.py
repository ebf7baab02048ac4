"""`python -m crew.cli` — the `plan-gpus` command without an installed console script."""

from crew.cli import main

raise SystemExit(main())
