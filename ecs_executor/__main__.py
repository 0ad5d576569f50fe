"""``python -m ecs_executor check [--team T]``: the same check as ``airflow ecs-executor check``."""

import sys

from ecs_executor import check_report

if len(sys.argv) < 2 or sys.argv[1] != "check":
    sys.exit("usage: python -m ecs_executor check [--team TEAM]")
sys.exit(check_report.main(sys.argv[2:]))
