"""Helpers for tests/integration/test_fault_injection.py: a LocalEcs endpoint wired to the executor, an
ECS-side census of the tasks it holds, and a proxy that rejects expired credentials.

Nothing here imports Airflow at module level: conftest.py must set AIRFLOW_HOME first.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from aiohttp import web
from botocore.config import Config

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.request.run_task import STARTED_BY
from tests.support.http_proxy import ForwardingProxy
from tests.support.polling import wait_for as wait_for  # re-exported for test_fault_injection

REGION = "us-east-1"
CONTAINER = "airflow-worker"
CLUSTER = "fault-cluster"
FAMILY = "fault-worker"
CONN_ENV = "AIRFLOW_CONN_AWS_TEST"

# Knobs every test starts from: fast lifecycle, no processes, no faults.
FAST_LIFECYCLE: dict[str, Any] = {
    "provisioning_seconds": 0.05,
    "deprovisioning_seconds": 0.02,
    "pretend_seconds": 600.0,  # tasks run until a test ends them (finish_task) unless a test says so
}

# Keys of a try as the executor tags its ECS tasks (run_task.identity_tags).
TRY_TAGS = ("airflow:dag_id", "airflow:task_id", "airflow:run_id", "airflow:try_number", "airflow:map_index")
TryId = tuple[str, str, str, int, int]


def connection_json(url: str) -> str:
    return json.dumps({"conn_type": "aws", "extra": {"endpoint_url": url, "region_name": REGION}})


def start_local_ecs(**knobs: Any) -> LocalEcs:
    """A pretend-mode LocalEcs holding the cluster and a task definition with our container."""
    ecs = LocalEcs(**{**FAST_LIFECYCLE, **knobs})
    ecs.start()
    ecs.bootstrap(
        [CLUSTER],
        [
            {
                "family": FAMILY,
                "containerDefinitions": [{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}],
            }
        ],
        REGION,
    )
    return ecs


def boto_client(url: str) -> Any:
    """A synchronous client for census calls (run with faults switched off)."""
    return boto3.client(
        "ecs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="census",
        aws_secret_access_key="census",
        config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=30),
    )


def try_id_of_key(key: Any) -> TryId:
    return (key.dag_id, key.task_id, key.run_id, int(key.try_number), int(key.map_index))


@dataclass(frozen=True)
class EcsTask:
    arn: str
    try_id: TryId
    last_status: str
    desired_status: str
    stop_code: str | None
    stopped_reason: str | None
    exit_code: int | None


def ecs_census(url: str, cluster: str = CLUSTER) -> list[EcsTask]:
    """Every ECS task our executors ever started on the cluster (ListTasks by startedBy, all statuses)."""
    client = boto_client(url)
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        token: str | None = None
        while True:
            page = client.list_tasks(
                cluster=cluster,
                startedBy=STARTED_BY,
                desiredStatus=desired,
                maxResults=100,
                **({"nextToken": token} if token else {}),
            )
            arns.extend(page["taskArns"])
            token = page.get("nextToken")
            if not token:
                break
    out: list[EcsTask] = []
    for i in range(0, len(arns), 100):
        answer = client.describe_tasks(cluster=cluster, tasks=arns[i : i + 100], include=["TAGS"])
        assert not answer["failures"], answer["failures"]
        for task in answer["tasks"]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            try_id = (
                tags[TRY_TAGS[0]],
                tags[TRY_TAGS[1]],
                tags[TRY_TAGS[2]],
                int(tags[TRY_TAGS[3]]),
                int(tags[TRY_TAGS[4]]),
            )
            container: dict[str, Any] = next((c for c in task["containers"] if c["name"] == CONTAINER), {})
            out.append(
                EcsTask(
                    arn=task["taskArn"],
                    try_id=try_id,
                    last_status=task["lastStatus"],
                    desired_status=task["desiredStatus"],
                    stop_code=task.get("stopCode"),
                    stopped_reason=task.get("stoppedReason"),
                    exit_code=container.get("exitCode"),
                )
            )
    return out


def tasks_per_try(census: list[EcsTask]) -> Counter[TryId]:
    return Counter(t.try_id for t in census)


class FakeTI:
    """What try_adopt_task_instances reads from a TaskInstance row."""

    def __init__(self, key: Any, external_executor_id: str | None):
        self.key = key
        self.external_executor_id = external_executor_id

    def __repr__(self) -> str:
        return f"FakeTI({self.key.task_id}, {self.external_executor_id})"


def terminal_events(driver: Any) -> dict[Any, list[Any]]:
    """Every SUCCESS/FAILED the event buffer ever carried, per key (duplicates kept)."""
    from airflow.utils.state import TaskInstanceState

    terminal = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)
    return {key: [s for s, _ in evs if s in terminal] for key, evs in driver.events.items()}


# ---- credential expiry -------------------------------------------------------------------------------

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")

EXPIRED_TOKEN_BODY = json.dumps(
    {"__type": "ExpiredTokenException", "message": "The security token included in the request is expired"}
).encode()


class ExpiringCredentialsProxy(ForwardingProxy):
    """An HTTP proxy in front of an ECS endpoint that answers ``ExpiredTokenException`` (HTTP 400) to
    every request signed with an access key marked expired, and forwards everything else.

    Unlike a fixed window of failures, a client that never rebuilds its credentials stays locked out, so
    tasks only finish if the executor really refreshes them.
    """

    def __init__(self, upstream: str):
        super().__init__(upstream, name="expiring-proxy")
        self.expired_keys: set[str] = set()
        self.rejected: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        self._lock = threading.Lock()

    def expire(self, access_key: str) -> None:
        with self._lock:
            self.expired_keys.add(access_key)

    async def intercept(self, request: web.Request) -> web.Response | None:
        match = _ACCESS_KEY.search(request.headers.get("Authorization", ""))
        key = match.group(1) if match else ""
        with self._lock:
            expired = key in self.expired_keys
        if expired:
            self.rejected[key] += 1
            return web.Response(
                status=400,
                body=EXPIRED_TOKEN_BODY,
                headers={"Content-Type": "application/x-amz-json-1.1"},
            )
        self.forwarded[key] += 1
        return None


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
