"""LocalEcs: the endpoint on its own thread, for synchronous callers."""

from __future__ import annotations

from pathlib import Path

from ecs_executor.local_ecs import LocalEcs
from tests.local_ecs.helpers import CLUSTER, is_dead, make_client, register, run, wait_for


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
