"""Start-up: how the executor refuses to start (one exception, one message, and the process ends on it),
the versions the worker image must match, the KMS key that seals workloads, the one start line, and the
warm-up."""

from __future__ import annotations

import logging
import platform
import sys
from typing import TYPE_CHECKING, Any

from ecs_executor.config.values import SECTION, env_var_name
from ecs_executor.core.data_key_policy import key_metadata_problem, startup_refuses
from ecs_executor.request.run_task import SCHEDULER_AIRFLOW_ENV, SCHEDULER_PYTHON_ENV

if TYPE_CHECKING:
    from ecs_executor.config.settings import EcsExecutorSettings
    from ecs_executor.facade.metrics import ExecutorMetrics

log = logging.getLogger(__name__)


class ExecutorStartupError(RuntimeError):
    """The executor cannot start; the message alone says what to fix.

    Not SystemExit: Airflow's job runner swallows SystemExit as a normal shutdown and exits 0.
    """


def print_startup_errors_plainly() -> None:
    """Make the process end on our message, not on a Python traceback (uncaught in the CLI)."""
    previous = sys.excepthook
    if getattr(previous, "_ecs_executor", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        if isinstance(exc, ExecutorStartupError):
            sys.stderr.write(f"\nThe scheduler cannot start: {exc}\n")
            return
        previous(exc_type, exc, tb)

    hook._ecs_executor = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def scheduler_versions() -> dict[str, str]:
    """Versions the worker image must match; entrypoint.sh compares them (docs/worker-image.md)."""
    import airflow

    return {SCHEDULER_PYTHON_ENV: platform.python_version(), SCHEDULER_AIRFLOW_ENV: airflow.__version__}


def check_workload_key(s: EcsExecutorSettings, team_name: str | None = None) -> None:
    """With ``workload_kms_key`` set: one DescribeKey with the executor's AWS connection. A key that does
    not exist, is disabled or pending deletion, or cannot make data keys stops the start; KMS unreachable,
    throttled or DescribeKey denied is only a warning (the first launches will tell)."""
    if not s.workload_kms_key:
        return
    from ecs_executor.aws.clients import AwsClients, describe_error, error_code

    env = env_var_name("workload_kms_key", team_name)
    where = f"[{SECTION}] workload_kms_key ({env}) = {s.workload_kms_key!r}"
    try:
        kms = AwsClients.for_settings(s).client("kms")
        metadata = kms.describe_key(KeyId=s.workload_kms_key)["KeyMetadata"]
    except Exception as exc:
        if not startup_refuses(error_code(exc)[0]):
            log.warning("Could not check %s with kms:DescribeKey: %s", where, describe_error(exc))
            return
        problem: str | None = f"KMS has no such key ({describe_error(exc)})"
    else:
        problem = key_metadata_problem(metadata)
    if problem is not None:
        message = f"ECS executor start-up check failed: {where}: {problem}"
        log.error("%s", message)
        print_startup_errors_plainly()
        raise ExecutorStartupError(message)


def started_line(s: EcsExecutorSettings) -> str:
    """The scheduler log's one line on what this executor will do (no secrets: names and rates only)."""
    tracking = (
        f"events from {s.events_queue} (reconcile every {s.reconcile_interval:g} s)"
        if s.effective_tracking_mode == "events"
        else f"polling every {s.poll_interval:g} s"
    )
    return (
        f"ECS executor started: cluster={s.cluster} region={s.region_name} container={s.container_name} "
        f"run_task_rate={s.effective_run_task_rate:.0f}/s burst={s.effective_run_task_burst} "
        f"tracking={tracking}" + (f" workload_kms_key={s.workload_kms_key}" if s.workload_kms_key else "")
    )


def warm_up(metrics: ExecutorMetrics) -> None:
    """Do at start-up what Airflow and we would otherwise do lazily on the first heartbeat: load the metrics
    registry, configure SQLAlchemy's mappers (the first task event's ``Log`` row). The first heartbeat's
    cost with and without it: docs/benchmarks.md."""
    metrics.gauges(pending=0, running=0)
    metrics.engine_counters({}, None, None, 0)
    try:
        from airflow.models.log import Log
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
        Log(event="ecs_executor warm-up")  # not added to any session
    except Exception:  # a warm-up only: never a reason not to start
        log.debug("Warm-up of Airflow's models failed", exc_info=True)
