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

from ecs_executor.stack import options as stack_options

ARG_TEAM = Arg(("--team",), help="Check the configuration of this team (multi-team)", default=None)
# The same arguments as ``python -m ecs_executor config-from-stack`` (one table: stack/options.py).
CONFIG_FROM_STACK_ARGS = tuple(Arg(flags, **keywords) for flags, keywords in stack_options.ARGUMENTS)

ECS_EXECUTOR_COMMANDS = (
    ActionCommand(
        name="check",
        help="Check configuration, credentials, cluster, task definition and network",
        func=lazy_load_command("ecs_executor.cli.check_command"),
        args=(ARG_TEAM,),
    ),
    ActionCommand(
        name="config-from-stack",
        help="Print the [aws_ecs_executor] configuration from a stack of deploy/ecs-executor.yaml",
        func=lazy_load_command("ecs_executor.cli.config_from_stack_command"),
        args=CONFIG_FROM_STACK_ARGS,
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
    from ecs_executor.check.report import run_check

    sys.exit(run_check(team_name=getattr(args, "team", None)))


def config_from_stack_command(args: argparse.Namespace) -> None:
    """``airflow ecs-executor config-from-stack STACK``: print the section, exit 1 with one line on error."""
    from ecs_executor.stack.command import run

    sys.exit(run(args))
