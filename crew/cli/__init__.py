"""`plan-gpus`: the dry-run planner and its subcommands.

This package must stay light: `plan-gpus` answers in well under a second, so it never imports crewai,
litellm or llama_cpp (crewai alone takes ~6 s to import). Each command group lives in its own module
(plan, estimate, serve, monitor, validate) with `register(name, parser)`; the bare `plan-gpus [options]`
form runs the `plan` subcommand. Errors end in crew/cli/guard.py, shared with `localcrew`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple


class Subcommand(NamedTuple):
    module: str  # imported lazily, so that one subcommand's imports never slow another
    summary: str  # the line `plan-gpus --help` shows


SUBCOMMANDS: dict[str, Subcommand] = {
    "plan": Subcommand("crew.cli.plan", "plan where each agent's model goes (the default; nothing starts)"),
    "profiles": Subcommand("crew.cli.plan", "list the built-in rigs for --profile NAME"),
    "estimate": Subcommand("crew.cli.estimate", "what one model occupies under llama.cpp, term by term"),
    "validate": Subcommand("crew.cli.validate", "load a model for real; measured memory and tokens/s vs estimate"),
    "pull": Subcommand("crew.cli.pull", "download every planned model for the plan's backend"),
    "up": Subcommand("crew.cli.serve", "start the planned model servers and leave them running"),
    "status": Subcommand("crew.cli.serve", "show the servers `up` started: pid, port, pinning, health"),
    "down": Subcommand("crew.cli.serve", "stop the servers `up` (or keep_warm) left running"),
    "monitor": Subcommand("crew.cli.monitor", "watch each GPU live against the plan, with alerts"),
    "doctor": Subcommand("crew.cli.doctor", "check the llama.cpp build against this machine (CPU, GPU, a real load)"),
}

Runner = Callable[[argparse.Namespace], int]


def _subcommand_list() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()]
    return "commands (`plan-gpus COMMAND --help` for each):\n" + "\n".join(lines)


def build_parser(name: str) -> tuple[argparse.ArgumentParser, Runner]:
    """The real parser of one subcommand and the function that runs it (tests parse with it too)."""
    module = importlib.import_module(SUBCOMMANDS[name].module)
    parser = argparse.ArgumentParser(
        prog=f"plan-gpus {name}" if name != "plan" else "plan-gpus",
        epilog=_subcommand_list() if name == "plan" else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run: Runner = module.register(name, parser)
    return parser, run


def _split(args: list[str]) -> str:
    """The subcommand named first, removed from `args`; `plan` when only options are given."""
    if args and args[0] in SUBCOMMANDS:
        return args.pop(0)
    if args and not args[0].startswith("-"):
        from crew.errors import UsageError

        raise UsageError(f"unknown command {args[0]!r}", fix="use one of " + ", ".join(SUBCOMMANDS)
                         + ", or options only for a plan (`plan-gpus --help` lists them)")
    return "plan"


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, Runner]:
    """`argv` as `plan-gpus` would read it. argparse's own usage errors exit 2 (SystemExit)."""
    args = list(argv)
    parser, run = build_parser(_split(args))
    return parser.parse_args(args), run


def main(argv: Sequence[str] | None = None) -> int:
    from crew.cli.guard import guarded

    args = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        try:
            ns, run = parse(args)
        except SystemExit as exc:  # argparse printed its usage error (exit 2), or the help (exit 0)
            return int(exc.code or 0) and 2
        return run(ns)

    return guarded("plan-gpus", body)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
