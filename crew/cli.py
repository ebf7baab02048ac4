"""`plan-gpus`: the dry-run planner and its subcommands.

This module must stay light: `plan-gpus` answers in well under a second, so it never imports crewai,
litellm or llama_cpp (crewai alone takes ~6 s to import). Each subcommand lives in its own module and
registers itself in SUBCOMMANDS; the bare `plan-gpus [options]` form runs the `plan` subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from crew.errors import LocalcrewError

# name -> "module:function". The module exposes `register(parser)`; the function takes the parsed args
# and returns an exit code. Imported lazily so that one subcommand's imports never slow another.
SUBCOMMANDS: dict[str, str] = {
    "plan": "crew.cli_plan",
    "estimate": "crew.cli_estimate",
    "profiles": "crew.cli_plan",
    "up": "crew.cli_serve",
    "down": "crew.cli_serve",
    "status": "crew.cli_serve",
    "monitor": "crew.cli_monitor",
    "validate": "crew.cli_validate",
}


def _build_parser(name: str) -> tuple[argparse.ArgumentParser, Callable[[argparse.Namespace], int]]:
    module = importlib.import_module(SUBCOMMANDS[name])
    parser = argparse.ArgumentParser(prog=f"plan-gpus {name}" if name != "plan" else "plan-gpus")
    run: Callable[[argparse.Namespace], int] = module.register(name, parser)
    return parser, run


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = "plan"
    if args and args[0] in SUBCOMMANDS:
        name = args.pop(0)
    elif args and not args[0].startswith("-"):
        known = ", ".join(sorted(SUBCOMMANDS))
        print(f"plan-gpus: unknown command {args[0]!r} — fix: use one of {known}, or options only for a plan",
              file=sys.stderr)
        return 2
    parser, run = _build_parser(name)
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0) and 2
    try:
        return run(ns)
    except LocalcrewError as err:
        print(f"plan-gpus: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("plan-gpus: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
