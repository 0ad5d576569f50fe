"""``python -m ecs_executor check|config-from-stack ...``: the ``airflow ecs-executor`` commands without
building Airflow's CLI."""

import sys

USAGE = "usage: python -m ecs_executor check [--team TEAM] | config-from-stack STACK [--region R] [...]"

command = sys.argv[1] if len(sys.argv) > 1 else ""
if command == "check":
    from ecs_executor.check import report as check_report

    sys.exit(check_report.main(sys.argv[2:]))
if command == "config-from-stack":
    from ecs_executor.stack import command as config_from_stack

    sys.exit(config_from_stack.main(sys.argv[2:]))
sys.exit(USAGE)
