"""Command-line entry points: ``airflow ecs-executor check`` and ``python -m ecs_executor check``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cli_commands() -> list[Any]:
    """Airflow CLI commands (provider metadata ``cli`` and ``EcsExecutor.get_cli_commands``)."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    team = Arg(("--team",), help="check the executor of this team (multi-team deployments)", default=None)
    return [
        GroupCommand(
            name="ecs-executor",
            help="Amazon ECS executor tools",
            subcommands=(
                ActionCommand(
                    name="check",
                    help="Validate [aws_ecs_executor] and the AWS resources it names; exit 1 on any failure",
                    func=lazy_load_command("ecs_executor.cli.check_command"),
                    args=(team,),
                ),
            ),
        )
    ]


def check_command(args: argparse.Namespace) -> None:
    """Airflow CLI handler: exits with the check's status."""
    from ecs_executor.check import run_check

    sys.exit(run_check(team_name=getattr(args, "team", None)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecs_executor")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate configuration and AWS resources")
    check.add_argument("--team", default=None)
    args = parser.parse_args(argv)
    from ecs_executor.check import run_check

    return run_check(team_name=args.team)
