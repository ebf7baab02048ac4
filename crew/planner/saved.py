"""A plan saved by `plan-gpus --save`, read back (adapter: the file's IO; the parsing is plan.py's).

One reader for `localcrew run --plan`, LOCALCREW_PLAN, `plan-gpus up --plan` and `plan-gpus monitor --plan`,
so an unreadable plan reads the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

from crew.errors import ConfigError
from crew.planner.plan import Plan, plan_from_text

SAVE_HINT = "write it again with `plan-gpus --save FILE`"


def read_saved_plan(path: Path, *, fix: str = SAVE_HINT) -> Plan:
    try:
        return plan_from_text(path.read_text(encoding="utf-8"))  # bounded: a hostile file is one line
    except OSError as exc:
        raise ConfigError(f"cannot read the saved plan: {exc.strerror}", where=str(path), fix=fix) from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"not a plan saved by plan-gpus: {exc}", where=str(path), fix=fix) from None
