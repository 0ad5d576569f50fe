"""facade/admission.py: an Airflow workload -> the Launch the engine gets."""

from __future__ import annotations

import pytest

from ecs_executor.facade.admission import callback_identity, to_launch
from tests.conftest import SECRET_TOKEN, make_workload
from tests.integration.test_callbacks_metrics import make_callback


def test_a_task_becomes_a_launch_with_its_queue_config_and_a_fresh_launch_id() -> None:
    w = make_workload("t", executor_config={"cluster": "other"}, queue="gpu")
    key, launch, is_callback = to_launch(w, deadline=123.0)
    assert key == w.ti.key and not is_callback
    assert (launch.queue, launch.executor_config, launch.deadline) == ("gpu", {"cluster": "other"}, 123.0)
    assert launch.identity.task_id == "t" and SECRET_TOKEN in launch.workload_json
    again = to_launch(w, deadline=123.0)[1]
    assert again.launch_id != launch.launch_id and len(launch.launch_id) == 32
    assert SECRET_TOKEN not in repr(launch)  # the JWT never reaches a log line through repr


def test_a_callback_carries_its_dag_and_run_in_its_identity() -> None:
    callback = make_callback(dag_id="etl", run_id="manual__1")
    _key, launch, is_callback = to_launch(callback, deadline=1.0)
    assert is_callback and launch.queue is None and launch.executor_config is None
    identity = callback_identity(callback)  # type: ignore[arg-type]
    assert (identity.dag_id, identity.run_id) == ("etl", "manual__1")
    assert identity.task_id.startswith("callback:")


def test_other_workloads_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cannot run object workloads"):
        to_launch(object(), deadline=1.0)
