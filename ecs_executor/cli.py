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
# config-from-stack: the arguments of ``python -m ecs_executor config-from-stack`` (stack/command.py).
ARG_STACK = Arg(("stack",), help="Name or ID of a stack deployed from deploy/ecs-executor.yaml")
ARG_REGION = Arg(("--region",), help="The stack's Region (default: AWS_REGION)", default=None)
ARG_FORMAT = Arg(("--format",), help="airflow.cfg section or env vars", choices=("ini", "env"), default="ini")
ARG_SCHEDULER = Arg(
    ("--scheduler",), help="With event tracking, which scheduler's queue (1-5)", type=int, default=1
)
ARG_TEAM_OPTIONS = Arg(("--team",), help="Write the options for this team (multi-team)", default=None)
ARG_CONN_ID = Arg(("--conn-id",), help="Airflow AWS connection to read the stack with", default="aws_default")

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
        args=(ARG_STACK, ARG_REGION, ARG_FORMAT, ARG_SCHEDULER, ARG_TEAM_OPTIONS, ARG_CONN_ID),
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
