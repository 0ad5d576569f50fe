"""facade/startup.py: the executor refuses to start with one message, and the process ends on it."""

from __future__ import annotations

import io
import platform
import sys

import pytest

from ecs_executor.facade.startup import ExecutorStartupError, print_startup_errors_plainly, scheduler_versions
from ecs_executor.request.run_task import SCHEDULER_AIRFLOW_ENV, SCHEDULER_PYTHON_ENV


def test_the_process_ends_on_our_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: seen.append(e))
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    print_startup_errors_plainly()
    print_startup_errors_plainly()  # idempotent: wraps once
    sys.excepthook(ExecutorStartupError, ExecutorStartupError("subnets are wrong"), None)
    assert err.getvalue() == "\nThe scheduler cannot start: subnets are wrong\n" and seen == []
    other = ValueError("a bug")
    sys.excepthook(ValueError, other, None)
    assert seen == [other]  # anything else keeps its traceback


def test_not_a_system_exit() -> None:
    """Airflow's job runner swallows SystemExit and exits 0: a refused start must not look clean."""
    assert not issubclass(ExecutorStartupError, SystemExit)


def test_scheduler_versions_are_what_the_worker_image_compares() -> None:
    import airflow

    assert scheduler_versions() == {
        SCHEDULER_PYTHON_ENV: platform.python_version(),
        SCHEDULER_AIRFLOW_ENV: airflow.__version__,
    }


def test_started_line_names_the_tracking_mode() -> None:
    from ecs_executor.config.settings import settings_from_mapping
    from ecs_executor.facade.startup import started_line

    base = {"cluster": "c", "task_definition": "td", "container_name": "w", "region_name": "us-east-1"}
    assert started_line(settings_from_mapping(base)).endswith("tracking=polling every 2 s")
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/ecs-events"
    events = started_line(settings_from_mapping({**base, "events_queue": queue}))
    assert events.endswith(f"tracking=events from {queue} (reconcile every 60 s)")
