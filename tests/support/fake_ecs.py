"""A fake ECS client for engine unit tests: no network, every request checked against botocore's ECS
service model (as dagster-aws's StubbedEcs does), scripted answers, and a record of every call."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.engine import Engine
from ecs_executor.request.run_task import TryIdentity, new_launch_id
from tests.support.service_model import assert_valid_request, service_model

_MODEL = service_model("ecs")
_METHODS = {
    "run_task": "RunTask",
    "describe_tasks": "DescribeTasks",
    "stop_task": "StopTask",
    "describe_clusters": "DescribeClusters",
    "describe_task_definition": "DescribeTaskDefinition",
    # task definition clean-up
    "list_task_definition_families": "ListTaskDefinitionFamilies",
    "list_task_definitions": "ListTaskDefinitions",
    "deregister_task_definition": "DeregisterTaskDefinition",
    "delete_task_definitions": "DeleteTaskDefinitions",
    "list_tasks": "ListTasks",
    "register_task_definition": "RegisterTaskDefinition",
    "tag_resource": "TagResource",
}
REGION, ACCOUNT = "us-east-1", "123456789012"


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "RunTask",
    )


class FakeEcs:
    """Tasks move only when a test says so (``set_status``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tasks: dict[str, dict[str, Any]] = {}  # arn -> description
        self.cluster_defaults: dict[str, list[dict[str, Any]]] = {}
        self.run_task_script: list[Callable[[dict[str, Any]], Any]] = []  # one per RunTask, then normal
        self.run_task_delay = 0.0  # seconds each RunTask stays unanswered
        self.register_script: list[Callable[[dict[str, Any]], Any]] = []  # one per Register, then normal
        self.register_delay = 0.0
        self._ids = itertools.count(1)
        # Task definitions by ARN: {"taskDefinition": ..., "tags": [...]} (see add_definition).
        self.definitions: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, BaseException] = {}  # method -> raised by every call of it
        self.page_size = 100  # list answers hold at most this many (and maxResults)

    def __getattr__(self, method: str) -> Any:
        if method not in _METHODS:
            raise AttributeError(method)

        async def call(**kwargs: Any) -> Any:
            assert_valid_request(_MODEL, _METHODS[method], kwargs)
            self.calls.append((method, kwargs))
            if method in self.errors:
                raise self.errors[method]
            delays = {"run_task": self.run_task_delay, "register_task_definition": self.register_delay}
            await asyncio.sleep(delays.get(method, 0))
            return getattr(self, "_" + method)(**kwargs)

        return call

    def requests(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]

    # ---- answers ----------------------------------------------------------------------------------

    def _run_task(self, **kwargs: Any) -> Any:
        if self.run_task_script:
            answer = self.run_task_script.pop(0)(kwargs)
            if isinstance(answer, BaseException):
                raise answer
            if answer is not None:
                return answer
        cluster = kwargs.get("cluster", "default")
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{next(self._ids):032x}"
        task = {
            "taskArn": arn,
            "clusterArn": cluster,
            "lastStatus": "PROVISIONING",
            "desiredStatus": "RUNNING",
            "version": 1,
            "taskDefinitionArn": kwargs["taskDefinition"],
        }
        strategy = kwargs.get("capacityProviderStrategy")
        if strategy:  # ECS names the provider that placed the task (the first, here)
            task["capacityProviderName"] = strategy[0]["capacityProvider"]
        if kwargs.get("launchType") or strategy:
            fargate = kwargs.get("launchType") == "FARGATE" or "FARGATE" in task.get(
                "capacityProviderName", ""
            )
            task["launchType"] = "FARGATE" if fargate else kwargs.get("launchType", "EC2")
        self.tasks[arn] = task
        return {"tasks": [task], "failures": []}

    def _describe_tasks(self, cluster: str, tasks: list[str], **_: Any) -> Any:
        found = [self.tasks[a] for a in tasks if a in self.tasks and f"/{cluster}/" in a]
        missing = [
            {"arn": a, "reason": "MISSING"} for a in tasks if a not in self.tasks or f"/{cluster}/" not in a
        ]
        return {"tasks": found, "failures": missing}

    def _stop_task(self, cluster: str, task: str, **_: Any) -> Any:
        self.set_status(task, "STOPPED", stop_code="UserInitiated")
        return {"task": self.tasks.get(task, {})}

    def _describe_clusters(self, clusters: list[str], **_: Any) -> Any:
        answers = [
            {
                "clusterName": name,
                "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}",
                "status": "ACTIVE",
                "defaultCapacityProviderStrategy": self.cluster_defaults.get(name, []),
            }
            for name in clusters
        ]
        return {"clusters": answers, "failures": []}

    def _describe_task_definition(self, taskDefinition: str, include: Any = None, **_: Any) -> Any:
        stored = self.definition(taskDefinition)
        if stored is None:
            raise client_error("ClientException", "Unable to describe task definition.")
        answer: dict[str, Any] = {"taskDefinition": dict(stored["taskDefinition"])}
        if include and "TAGS" in include:
            answer["tags"] = list(stored["tags"])
        return answer

    def definition(self, ref: str) -> dict[str, Any] | None:
        """What ECS would describe for an ARN, ``family:revision`` or ``family`` (its latest ACTIVE
        revision). A family never registered that is not a derived one ("-x<hash>") describes as a
        minimal base definition."""
        if ref in self.definitions:
            return self.definitions[ref]
        family, _sep, revision = ref.rsplit("/", 1)[-1].partition(":")
        chosen = [
            d
            for d in self.definitions.values()
            if d["taskDefinition"]["family"] == family
            and (
                str(d["taskDefinition"]["revision"]) == revision
                if revision
                else d["taskDefinition"]["status"] == "ACTIVE"
            )
        ]
        if chosen:
            return chosen[-1]
        if "-x" in family:
            return None
        base = {"family": family, "containerDefinitions": [{"name": "w", "image": "base:1", "memory": 512}]}
        return self.definitions[self.store(base)]

    def revisions(self, family: str) -> list[dict[str, Any]]:
        """A family's task definition descriptions, oldest first."""
        return [
            d["taskDefinition"] for d in self.definitions.values() if d["taskDefinition"]["family"] == family
        ]

    def store(self, request: dict[str, Any], registered_at: float | None = None) -> str:
        """Keep a RegisterTaskDefinition request as ECS would (the next revision of its family, ACTIVE,
        with its tags); its ARN."""
        family = request["family"]
        revision = 1 + len(self.revisions(family))
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"
        self.definitions[arn] = {
            "taskDefinition": {
                **{k: v for k, v in request.items() if k != "tags"},
                "taskDefinitionArn": arn,
                "revision": revision,
                "status": "ACTIVE",
                "compatibilities": ["EC2"],
                "registeredAt": time.time() if registered_at is None else registered_at,
            },
            "tags": list(request.get("tags") or []),
        }
        return arn

    def _register_task_definition(self, **kwargs: Any) -> Any:
        if self.register_script:
            answer = self.register_script.pop(0)(kwargs)
            if isinstance(answer, BaseException):
                raise answer
        stored = self.definitions[self.store(kwargs)]
        return {"taskDefinition": stored["taskDefinition"], "tags": list(stored["tags"])}

    def _tag_resource(self, resourceArn: str, tags: list[dict[str, str]]) -> Any:
        stored = self.definitions.get(resourceArn)
        if stored is None:
            raise client_error("ResourceNotFoundException", "The specified resource could not be found.")
        keys = {t["key"] for t in tags}
        stored["tags"] = [t for t in stored["tags"] if t["key"] not in keys] + list(tags)
        return {}

    # ---- task definitions (the clean-up) ---------------------------------------------------------

    def add_definition(
        self, family: str, tags: dict[str, str] | None = None, registered_at: float | None = None
    ) -> str:
        """A registered ACTIVE revision (the next in its family); its ARN."""
        request = {
            "family": family,
            "containerDefinitions": [{"name": "w"}],
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        return self.store(request, registered_at)

    def status_of(self, arn: str) -> str | None:
        stored = self.definitions.get(arn)
        return None if stored is None else str(stored["taskDefinition"]["status"])

    def _page(
        self, items: list[str], key: str, maxResults: int = 100, nextToken: str | None = None, **_: Any
    ) -> Any:
        start = int(nextToken or 0)
        end = start + min(maxResults, self.page_size)
        answer: dict[str, Any] = {key: items[start:end]}
        if end < len(items):
            answer["nextToken"] = str(end)
        return answer

    def _list_task_definition_families(
        self, familyPrefix: str = "", status: str = "ACTIVE", **kw: Any
    ) -> Any:
        families = sorted(
            {
                d["taskDefinition"]["family"]
                for d in self.definitions.values()
                if d["taskDefinition"]["family"].startswith(familyPrefix)
                and (status == "ALL" or d["taskDefinition"]["status"] == status)
            }
        )
        return self._page(families, "families", **kw)

    def _list_task_definitions(self, familyPrefix: str = "", status: str = "ACTIVE", **kw: Any) -> Any:
        arns = [
            arn
            for arn, d in self.definitions.items()
            # ECS: familyPrefix is a full family name
            if familyPrefix in ("", d["taskDefinition"]["family"]) and d["taskDefinition"]["status"] == status
        ]
        kw.pop("sort", None)
        return self._page(arns, "taskDefinitionArns", **kw)

    def _deregister_task_definition(self, taskDefinition: str) -> Any:
        stored = self.definitions[taskDefinition]["taskDefinition"]
        if stored["status"] == "ACTIVE":
            stored["status"] = "INACTIVE"
        return {"taskDefinition": stored}

    def _delete_task_definitions(self, taskDefinitions: list[str]) -> Any:
        done, failures = [], []
        for arn in taskDefinitions:
            stored = self.definitions.get(arn)
            if stored is None:
                failures.append({"arn": arn, "reason": "The specified task definition does not exist."})
            elif stored["taskDefinition"]["status"] == "ACTIVE":
                failures.append(
                    {"arn": arn, "reason": "The specified task definition is still in ACTIVE status."}
                )
            else:
                stored["taskDefinition"]["status"] = "DELETE_IN_PROGRESS"
                done.append(stored["taskDefinition"])
        return {"taskDefinitions": done, "failures": failures}

    def _list_tasks(self, cluster: str = "default", desiredStatus: str = "RUNNING", **kw: Any) -> Any:
        arns = [
            arn
            for arn, task in self.tasks.items()
            if f"/{cluster}/" in arn and task.get("desiredStatus") == desiredStatus
        ]
        return self._page(arns, "taskArns", **kw)

    def set_status(
        self,
        arn: str,
        status: str,
        *,
        exit_code: int | None = None,
        stop_code: str | None = None,
        reason: str = "",
    ) -> None:
        task = self.tasks[arn]
        task["lastStatus"] = status
        task["version"] = task.get("version", 0) + 1  # as ECS: one per change it announces
        if status == "STOPPED":
            task["desiredStatus"] = "STOPPED"
            task["version"] += 1  # the desired status changed too
            task["stopCode"] = stop_code or "EssentialContainerExited"
            task["stoppedReason"] = reason or "Essential container in task exited"
            container: dict[str, Any] = {"name": "w", "lastStatus": "STOPPED"}
            if exit_code is not None:
                container["exitCode"] = exit_code
            if reason and stop_code == "TaskFailedToStart":
                container["reason"] = reason
            task["containers"] = [container]

    def container_exited(
        self, arn: str, exit_code: int, *, stop_code: str = "EssentialContainerExited"
    ) -> None:
        """The essential container exited and ECS is stopping the task: the exit code shows before STOPPED."""
        task = self.tasks[arn]
        task["lastStatus"] = "DEACTIVATING"
        task["desiredStatus"] = "STOPPED"
        task["version"] = task.get("version", 0) + 1
        task["stopCode"] = stop_code
        task["stoppedReason"] = "Essential container in task exited"
        task["containers"] = [{"name": "w", "lastStatus": "STOPPED", "exitCode": exit_code}]

    def described(self, arn: str) -> int:
        return sum(arn in request["tasks"] for request in self.requests("describe_tasks"))


OPTIONS = {
    "cluster": "main",
    "container_name": "w",
    "region_name": REGION,
    "task_definition": "td",
    "poll_interval": "0.05",
    "shutdown_timeout": "2",
}


@contextlib.contextmanager
def running_engine(
    fake: FakeEcs, sqs_factory: Any = None, kms_factory: Any = None, **options: Any
) -> Iterator[Engine]:
    settings = settings_from_mapping({**OPTIONS, **options})

    async def factory() -> tuple[Any, contextlib.AsyncExitStack]:
        return fake, contextlib.AsyncExitStack()

    engine = Engine(
        settings, m.Channel(), client_factory=factory, sqs_factory=sqs_factory, kms_factory=kms_factory
    )
    with started(engine):
        yield engine


@contextlib.contextmanager
def started(engine: Engine) -> Iterator[Engine]:
    """``engine`` running for the block; then shut down, its thread joined."""
    engine.start()
    try:
        yield engine
    finally:
        engine.channel.send(m.Shutdown())
        assert engine.join(10)


def launch(
    engine: Engine, name: str, executor_config: dict[str, Any] | None = None, queue: str | None = None
) -> m.Launch:
    command = m.Launch(
        name,
        TryIdentity("dag", name, "run", 1),
        '{"token": "secret"}',
        executor_config,
        time.monotonic() + 600,
        launch_id=new_launch_id(),
        queue=queue,
    )
    engine.channel.send(command)
    return command


# Results drained from a channel but not yet handed to a caller of results_until.
_UNREAD: weakref.WeakKeyDictionary[m.Channel, list[m.Result]] = weakref.WeakKeyDictionary()


def results_until(
    engine: Engine, done: Callable[[list[m.Result]], bool], timeout: float = 10.0
) -> list[m.Result]:
    """Collect the engine's results until ``done`` says enough (or fail with what came)."""
    seen: list[m.Result] = []
    unread = _UNREAD.setdefault(engine.channel, [])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not unread:
            unread += engine.channel.drain_results()  # in the order sent
        if unread:
            seen.append(unread.pop(0))  # one at a time: what ``done`` does not need stays for the next call
        else:
            time.sleep(0.02)
        if done(seen):
            return seen
    raise AssertionError(f"not done within {timeout}s: {seen}")


def of(kind: type, key: str) -> Callable[[list[m.Result]], bool]:
    return lambda seen: any(isinstance(r, kind) and r.key == key for r in seen)


def _is_wanted(definition: dict[str, Any], revision: str) -> bool:
    """The revision asked for, or (none asked) an ACTIVE one, as DescribeTaskDefinition picks."""
    return str(definition["revision"]) == revision if revision else definition["status"] == "ACTIVE"
