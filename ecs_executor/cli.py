"""``airflow ecs-executor ...``: the command definitions, apart from the executor and the check logic.

Airflow builds its CLI parser on every ``airflow`` invocation, from the provider's ``cli`` entry
(``get_provider_info``) or, for older loaders, from ``EcsExecutor.get_cli_commands()``. Both reach this
module only when the CLI is built, and the commands' functions are loaded only when run
(``lazy_load_command``), so neither the scheduler nor ``airflow --help`` imports the check or boto3.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

ARG_TEAM = Arg(("--team",), help="Check the configuration of this team (multi-team)", default=None)

ECS_EXECUTOR_COMMANDS = (
    ActionCommand(
        name="check",
        help="Check configuration, credentials, cluster, task definition and network",
        func=lazy_load_command("ecs_executor.cli.check_command"),
        args=(ARG_TEAM,),
    ),
)


def cli_commands() -> list[Any]:
    """The ``ecs-executor`` command group (provider ``cli`` entry and ``EcsExecutor.get_cli_commands``)."""
    return [
        GroupCommand(
            name="ecs-executor", help="Tools for the ECS executor", subcommands=ECS_EXECUTOR_COMMANDS
        )
    ]


def check_command(args: argparse.Namespace) -> None:
    """``airflow ecs-executor check [--team T]``: print the check table, exit 1 when a check failed."""
    from ecs_executor.check_report import run_check

    sys.exit(run_check(team_name=getattr(args, "team", None)))
