"""The check's output and command line: configuration rows, the table, the summary, ``main``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

from ecs_executor.aws.clients import describe_error
from ecs_executor.check.rows import FAIL, PASS, SKIP, WARN, CheckResult
from ecs_executor.check.run import collect_checks
from ecs_executor.config.settings import SECTION, EcsExecutorConfigError, EcsExecutorSettings
from ecs_executor.config.source import ConfLike


def config_results(
    conf: ConfLike | None = None, team_name: str | None = None
) -> tuple[EcsExecutorSettings | None, list[CheckResult]]:
    """Load settings as the executor does; one FAIL row per configuration problem."""
    if conf is None:
        from airflow.executors.base_executor import ExecutorConf

        conf = ExecutorConf(team_name)
    section = f"[{team_name}={SECTION}]" if team_name else f"[{SECTION}]"
    try:
        settings = EcsExecutorSettings.from_conf(conf, team_name)
    except EcsExecutorConfigError as exc:
        fix = f"Set the option in {section} of airflow.cfg or through the environment variable named."
        return None, [CheckResult("config", False, problem, fix) for problem in exc.problems]
    except Exception as exc:  # e.g. a failing _cmd / _secret option
        return None, [CheckResult("config", False, f"could not read {section}: {describe_error(exc)}")]
    base = settings.base_run_task_kwargs()
    launch = base.get("launchType") or "capacity provider strategy"
    return settings, [
        CheckResult(
            "config",
            True,
            f"cluster {settings.cluster!r}, task definition {base.get('taskDefinition')!r}, container "
            f"{settings.container_name!r}, {launch}, region {settings.region_name}",
        )
    ]


# ---- output ---------------------------------------------------------------------------------------

HEADERS = ("CHECK", "RESULT", "DETAIL", "HOW TO FIX")


def format_table(results: Sequence[CheckResult], width: int | None = None) -> str:
    """Plain-text table that wraps DETAIL and HOW TO FIX to the terminal width."""
    width = max(80, width or shutil.get_terminal_size((120, 24)).columns)
    name_w = max(len(HEADERS[0]), *(len(r.name) for r in results)) if results else len(HEADERS[0])
    status_w = len(HEADERS[1])
    rest = width - name_w - status_w - 6  # three 2-space gutters
    detail_w = max(20, rest // 2)
    fix_w = max(20, rest - detail_w)

    def wrap(text: str, w: int) -> list[str]:
        return textwrap.wrap(text, w, break_on_hyphens=False) or [""]

    def row(cells: Iterable[str]) -> list[str]:
        name, status, detail, fix = cells
        left, right = wrap(detail, detail_w), wrap(fix, fix_w)
        lines = []
        for i in range(max(len(left), len(right))):
            parts = [
                (name if i == 0 else "").ljust(name_w),
                (status if i == 0 else "").ljust(status_w),
                (left[i] if i < len(left) else "").ljust(detail_w),
                right[i] if i < len(right) else "",
            ]
            lines.append("  ".join(parts).rstrip())
        return lines

    out = row(HEADERS)
    out.append("  ".join(("-" * name_w, "-" * status_w, "-" * detail_w, "-" * fix_w)))
    rows = [row((r.name, r.status, r.detail, r.fix)) for r in results]
    # Once any row wraps, a blank line between rows keeps them apart.
    spaced = any(len(lines) > 1 for lines in rows)
    for i, lines in enumerate(rows):
        if spaced and i:
            out.append("")
        out.extend(lines)
    return "\n".join(out)


def summary_line(results: Sequence[CheckResult]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in (PASS, FAIL, WARN, SKIP)}
    verdict = "all checks passed" if all(r.ok for r in results) else "some checks FAILED"
    shown = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    return f"{verdict} ({shown})"


# INFO chatter ("Found credentials in environment variables") would land in the middle of the table;
# what it says is in the credentials row anyway.
QUIET_LOGGERS = ("botocore", "boto3", "airflow.providers.amazon", "airflow.task.hooks")


@contextlib.contextmanager
def quiet_aws_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def run_check(conf: ConfLike | None = None, team_name: str | None = None, out: TextIO | None = None) -> int:
    """Print the check table; 0 when nothing failed, 1 otherwise."""
    out = out if out is not None else sys.stdout
    with quiet_aws_loggers():
        settings, results = config_results(conf, team_name)
        if settings is not None:
            results += collect_checks(settings, team_name=team_name)
    print(f"ECS executor check{f' (team {team_name})' if team_name else ''}", file=out)
    print(format_table(results), file=out)
    print(f"\n{summary_line(results)}", file=out)
    return 0 if all(r.ok for r in results) else 1


# ---- command line ---------------------------------------------------------------------------------


def build_parser(prog: str = "python -m ecs_executor.check") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Check the ECS executor's configuration and AWS resources."
    )
    parser.add_argument("--team", default=None, help="check the configuration of this team (multi-team)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_check(team_name=args.team)


if __name__ == "__main__":
    sys.exit(main())
