"""LocalEcs: the endpoint on its own thread, for synchronous callers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_executor.local_ecs import KnobError, LocalEcs
from tests.integration.local_ecs.helpers import CLUSTER, is_dead, make_client, register, run, wait_for


def test_stop_kills_task_processes(tmp_path: Path) -> None:
    with LocalEcs(provisioning_seconds=0, log_dir=str(tmp_path)) as ecs:
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        register(client, ["sh", "-c", "echo $$; exec sleep 30"])
        arn = run(client)
        pid = int(
            wait_for(lambda: ecs.log_path(arn).read_text().strip() if ecs.log_path(arn).exists() else "")
        )
    wait_for(lambda: is_dead(pid), timeout=10)


def test_bad_knobs_fail_in_the_callers_thread() -> None:
    with pytest.raises(KnobError, match="capacity_shortage_kind"):
        LocalEcs(capacity_shortage_kind="drought")


def test_configure_and_stats_before_start_and_after_stop() -> None:
    ecs = LocalEcs(pretend_seconds=1)
    assert ecs.configure(image_missing=True)["image_missing"] is True  # no loop yet: runs in place
    assert ecs.stats()["tasks_started"] == 0
    with ecs:
        assert (
            ecs.url is not None
            and ecs.configure(spot_interruption_seconds=3)["spot_interruption_seconds"] == 3
        )
    assert ecs.url is None
    ecs.stop()  # stopping twice is harmless
