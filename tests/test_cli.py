"""The command line a user meets: help that lists the commands, help on every flag, quiet pipes, 80 columns."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from crew.cli import SUBCOMMANDS, build_parser, main
from crew.main import _replay_parser, _resume_parser, _run_parser, localcrew
from tests.conftest import ROOT


def test_plan_gpus_help_lists_every_subcommand_with_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, sub in SUBCOMMANDS.items():
        assert f"  {name} " in out and sub.summary in out, name


def test_localcrew_help_lists_run_and_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert localcrew(["--help"]) == 0
    out = capsys.readouterr().out
    assert "\n  run [options]" in out and "\n  resume RUN_DIR" in out and "--task" in out


def _parsers() -> list[argparse.ArgumentParser]:
    return [build_parser(name)[0] for name in SUBCOMMANDS] + [
        _run_parser("localcrew run"), _resume_parser(), _replay_parser()]


def test_every_flag_and_argument_has_help_text() -> None:
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p in _parsers() for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert missing == []


def test_one_name_per_quantity_in_flags() -> None:
    flags = {opt for p in _parsers() for a in p._actions for opt in a.option_strings}
    assert "--bandwidth-gbs" in flags and "--bandwidth" not in flags


def test_unknown_subcommand_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pul"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown command 'pul'" in err and "monitor" in err


def test_json_into_a_closed_pipe_ends_quietly() -> None:
    """`plan-gpus --json | head -1` printed a BrokenPipeError traceback. The reader is closed before the
    command writes anything, so the write fails every time (no race on the pipe's buffer)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from crew.cli import main; sys.exit(main())",
                             "--profile", "rtx3090", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


def test_the_agents_table_reads_at_80_columns() -> None:
    from rich.console import Console

    from crew.config import LayoutConfig, load_agents
    from crew.planner.build import plan_for
    from crew.planner.render import agents_table, gpu_table

    plan = plan_for(load_agents(ROOT / "agents.yaml"), LayoutConfig(), profile="2x-rtx3060")
    console = Console(width=80, record=True, color_system=None)
    console.print(gpu_table(plan))
    console.print(agents_table(plan))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 80
    for a in plan.agents:  # each agent's row whole on one line: name, model, context and total together
        model = a.model.removeprefix("ollama/")
        assert any(a.name in line and model in line and str(a.num_ctx) in line for line in lines), a.name
    assert not any(line.strip() in ("KV", "+C", "+O", "W+") for line in lines)  # the old folded column
    gpu_lines = [line for line in lines if "documentation" in line]
    assert any(line.rstrip().endswith(tuple("0123456789")) for line in gpu_lines)  # its tok/s stays beside it
