"""``airflow ecs-executor config-from-stack STACK``: the executor's configuration from a deployed stack.

After ``aws cloudformation deploy --template-file deploy/ecs-executor.yaml``, the stack's outputs hold
every value the ``[aws_ecs_executor]`` section needs; copying a dozen identifiers by hand is where set-ups
go wrong. This reads the outputs (CloudFormation DescribeStacks, through the same Airflow AWS connection
the executor uses) and prints the section, checked by the executor's own config model.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ecs_executor.aws.clients import AwsClients, describe_error, error_code
from ecs_executor.aws.container_logs import ClientSource
from ecs_executor.check.report import quiet_aws_loggers
from ecs_executor.stack.options import (
    ARGUMENTS,
    MAX_EVENT_QUEUES,
    Format,
    StackConfigError,
    options_from_outputs,
    render,
    validation_problems,
)

# Stack states whose outputs describe deployed resources (a failed update rolled back to the last good set).
USABLE_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)


def stack_outputs(clients: ClientSource, stack: str, region: str) -> dict[str, str]:
    """``{OutputKey: OutputValue}`` of a usable stack; StackConfigError naming what is wrong otherwise."""
    try:
        answer = clients.client("cloudformation", region).describe_stacks(StackName=stack)
    except Exception as exc:
        code, message, _ = error_code(exc)
        if code == "ValidationError" and "does not exist" in message:
            raise StackConfigError(
                f"CloudFormation stack {stack!r} does not exist in {region}; check the name and --region "
                "(aws cloudformation list-stacks --region " + region + ")"
            ) from None
        raise StackConfigError(
            f"could not read CloudFormation stack {stack!r} in {region}: {describe_error(exc)} "
            "(the identity needs cloudformation:DescribeStacks)"
        ) from None
    stacks: list[dict[str, Any]] = answer.get("Stacks") or []
    if not stacks:
        raise StackConfigError(f"CloudFormation stack {stack!r} does not exist in {region}")
    status = str(stacks[0].get("StackStatus"))
    if status not in USABLE_STATES:
        reason = stacks[0].get("StackStatusReason")
        raise StackConfigError(
            f"stack {stack!r} is {status}{f' ({reason})' if reason else ''}, not "
            f"{' or '.join(sorted(USABLE_STATES))}; see its events (aws cloudformation describe-stack-events "
            f"--stack-name {stack} --region {region})"
        )
    return {str(o["OutputKey"]): str(o.get("OutputValue") or "") for o in stacks[0].get("Outputs") or []}


def config_from_stack(
    stack: str,
    region: str,
    *,
    fmt: Format = "ini",
    scheduler: int = 1,
    team_name: str | None = None,
    clients: ClientSource,
) -> str:
    """The configuration text for ``stack``; StackConfigError when the stack cannot give a valid one."""
    options = options_from_outputs(stack, stack_outputs(clients, stack, region), scheduler)
    problems = validation_problems(options, team_name)
    if problems:
        raise StackConfigError(f"stack {stack!r} gives an invalid configuration: " + "; ".join(problems))
    return render(options, fmt, stack, team_name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``python -m ecs_executor config-from-stack`` (stack/options.ARGUMENTS)."""
    for flags, keywords in ARGUMENTS:
        parser.add_argument(*flags, **keywords)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the configuration, or one line saying what is wrong; 0 or 1."""
    out, err = out or sys.stdout, err or sys.stderr
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        if not region:
            raise StackConfigError("no Region: pass --region (or set AWS_REGION)")
        if not 1 <= args.scheduler <= MAX_EVENT_QUEUES:
            raise StackConfigError(f"--scheduler must be 1-{MAX_EVENT_QUEUES}, not {args.scheduler}")
        # botocore's INFO lines would land in the printed configuration (often redirected to a file).
        with quiet_aws_loggers():
            text = config_from_stack(
                args.stack,
                region,
                fmt=args.format,
                scheduler=args.scheduler,
                team_name=args.team,
                clients=AwsClients(args.conn_id, region),
            )
    except StackConfigError as exc:
        print(f"config-from-stack: {exc}", file=err)
        return 1
    out.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecs_executor config-from-stack",
        description="Print the [aws_ecs_executor] configuration from a deployed CloudFormation stack.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
