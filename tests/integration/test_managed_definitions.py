"""Managed task definitions end to end: the real executor on the local ECS endpoint (pretend mode, ECS's
buckets on), tasks asking for other images and ARM, checked against what the endpoint says each task ran
with; a second executor (another scheduler, or a restart) finds the definitions again; a denied
registration fails the waiting tasks naming the permission."""

from __future__ import annotations

from collections import Counter
from typing import Any

from airflow.utils.state import TaskInstanceState

from ecs_executor.request.derived_definition import HASH_TAG, MANAGED_TAG
from tests.conftest import Driver, make_workload
from tests.support.executor_view import event_logs
from tests.support.fault_helpers import CONTAINER, FAMILY, boto_client

SUCCESS, FAILED = TaskInstanceState.SUCCESS, TaskInstanceState.FAILED
IMAGES = [f"repo/img-{i}:1" for i in range(5)]
ARCHES = ["X86_64", "ARM64"]


def derivation(i: int) -> dict[str, Any]:
    """Ten distinct derivations: five images, each on both architectures."""
    return {"image": IMAGES[i % 5], "runtime_platform": {"cpu_architecture": ARCHES[(i // 5) % 2]}}


def run_all(executor: Any, names: list[str], timeout: float = 90) -> Driver:
    driver = Driver(executor)
    workloads = [make_workload(name, executor_config=derivation(int(name[1:]))) for name in names]
    for workload in workloads:
        executor.queue_workload(workload, session=None)
    driver.until(lambda: len(driver.final_states()) == len(workloads), timeout=timeout, interval=0.1)
    return driver


def ran_with_by_task_id(local_ecs: Any) -> dict[str, dict[str, Any]]:
    """What each launched task ran with (the endpoint's record), by the Airflow task id it carried."""
    client = boto_client(local_ecs.url)
    records = {r["taskArn"]: r for r in local_ecs.launch_records()}
    out = {}
    arns = list(records)
    for i in range(0, len(arns), 100):
        for task in client.describe_tasks(cluster="fault-cluster", tasks=arns[i : i + 100], include=["TAGS"])[
            "tasks"
        ]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            out[tags["airflow:task_id"]] = records[task["taskArn"]]
    return out


def test_derived_definitions_registered_once_found_again_and_denials_reported(
    local_ecs: Any, point_at: Any, executors: Any
) -> None:
    point_at(local_ecs.url, run_task_rate="100", poll_interval="0.2")
    local_ecs.configure(pretend_seconds=0.2, throttle=True)  # ECS's buckets, modify 20 + 1/s included
    names = [f"t{i}" for i in range(100)]
    first = executors(parallelism=200)
    driver = run_all(first, names)
    assert set(driver.final_states().values()) == {SUCCESS}
    assert local_ecs.stats()["calls"]["RegisterTaskDefinition"] == 10  # 10 derivations, 100 tasks

    ran = ran_with_by_task_id(local_ecs)
    for i, name in enumerate(names):
        record, wanted = ran[name], derivation(i)
        assert record["containers"][CONTAINER]["image"] == wanted["image"]
        assert record["runtimePlatform"] == {
            "cpuArchitecture": wanted["runtime_platform"]["cpu_architecture"]
        }
        family, revision = record["taskDefinitionArn"].rsplit("/", 1)[1].split(":")
        assert family.startswith(f"{FAMILY}-x") and revision == "1"
    assert Counter(r["taskDefinitionArn"] for r in ran.values()).most_common(1)[0][1] == 10
    client = boto_client(local_ecs.url)
    described = client.describe_task_definition(
        taskDefinition=ran["t0"]["taskDefinitionArn"], include=["TAGS"]
    )
    tags = {t["key"]: t["value"] for t in described["tags"]}
    assert tags[MANAGED_TAG] == "true" and len(tags[HASH_TAG]) == 64
    first.end()

    # Another scheduler (or this one restarted): found again by family and hash tag, nothing registered.
    second = executors(parallelism=200)
    driver = run_all(second, [f"t{i}" for i in range(100, 120)])
    assert set(driver.final_states().values()) == {SUCCESS}
    assert local_ecs.stats()["calls"]["RegisterTaskDefinition"] == 10
    ran = ran_with_by_task_id(local_ecs)
    assert {ran[f"t{i}"]["taskDefinitionArn"] for i in range(100, 120)} == {
        ran[f"t{i}"]["taskDefinitionArn"] for i in range(10)
    }

    # Denied: the tasks waiting on a new derivation fail, naming the permission; others are undisturbed.
    local_ecs.configure(deny_actions="ecs:TagResource")
    denied = [make_workload(f"d{i}", executor_config={"image": "repo/new:1"}) for i in range(3)]
    plain = make_workload("plain")
    for workload in [*denied, plain]:
        second.queue_workload(workload, session=None)
    driver = Driver(second)
    driver.until(lambda: len(driver.final_states()) == 4, timeout=60, interval=0.1)
    states = {key.task_id: state for key, state in driver.final_states().items()}
    assert states == {"d0": FAILED, "d1": FAILED, "d2": FAILED, "plain": SUCCESS}
    for i in range(3):
        (reason,) = [extra for event, extra in event_logs(second, f"d{i}") if event == "ECS task failed"]
        assert "ecs:TagResource denied" in reason and "iam:PassRole" in reason, reason
    assert local_ecs.stats()["calls"]["RegisterTaskDefinition"] == 11  # one attempt for the three
