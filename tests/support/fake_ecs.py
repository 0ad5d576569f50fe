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
from botocore.session import get_session
from botocore.validate import ParamValidator

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.engine import Engine
from ecs_executor.request.run_task import TryIdentity, new_launch_id

_MODEL = get_session().get_service_model("ecs")
_METHODS = {
    "run_task": "RunTask",
    "describe_tasks": "DescribeTasks",
    "stop_task": "StopTask",
    "describe_clusters": "DescribeClusters",
    "describe_task_definition": "DescribeTaskDefinition",
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
        # Task definitions by family: revisions in order, each (description, tags). A family never
        # registered that is not a derived one ("-x<hash>") describes as a minimal base definition.
        self.definitions: dict[str, list[tuple[dict[str, Any], list[dict[str, str]]]]] = {}
        self.register_script: list[Callable[[dict[str, Any]], Any]] = []  # one per Register, then normal
        self.register_delay = 0.0
        self._ids = itertools.count(1)

    def __getattr__(self, method: str) -> Any:
        if method not in _METHODS:
            raise AttributeError(method)

        async def call(**kwargs: Any) -> Any:
            report = ParamValidator().validate(kwargs, _MODEL.operation_model(_METHODS[method]).input_shape)
            assert not report.has_errors(), report.generate_report()
            self.calls.append((method, kwargs))
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
        }
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
        family, _sep, revision = taskDefinition.rsplit("/", 1)[-1].partition(":")
        revisions = self.definitions.get(family)
        if revisions is None and "-x" not in family:
            base = {
                "family": family,
                "containerDefinitions": [{"name": "w", "image": "base:1", "memory": 512}],
            }
            revisions = self.definitions[family] = [(self._stored(base, 1), [])]
        chosen = [
            (d, t)
            for d, t in revisions or []
            if (str(d["revision"]) == revision if revision else d["status"] == "ACTIVE")
        ]
        if not chosen:
            raise client_error("ClientException", "Unable to describe task definition.")
        definition, tags = chosen[-1]
        answer: dict[str, Any] = {"taskDefinition": definition}
        if include and "TAGS" in include:
            answer["tags"] = list(tags)
        return answer

    def _stored(self, request: dict[str, Any], revision: int) -> dict[str, Any]:
        family = request["family"]
        return {
            **{k: v for k, v in request.items() if k != "tags"},
            "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}",
            "revision": revision,
            "status": "ACTIVE",
            "compatibilities": ["EC2"],
        }

    def _register_task_definition(self, **kwargs: Any) -> Any:
        if self.register_script:
            answer = self.register_script.pop(0)(kwargs)
            if isinstance(answer, BaseException):
                raise answer
        revisions = self.definitions.setdefault(kwargs["family"], [])
        definition = self._stored(kwargs, len(revisions) + 1)
        revisions.append((definition, list(kwargs.get("tags") or [])))
        return {"taskDefinition": definition, "tags": list(kwargs.get("tags") or [])}

    def _tag_resource(self, resourceArn: str, tags: list[dict[str, str]]) -> Any:
        family, _sep, revision = resourceArn.rsplit("/", 1)[-1].partition(":")
        for definition, current in self.definitions.get(family, []):
            if str(definition["revision"]) == revision:
                keys = {t["key"] for t in tags}
                current[:] = [t for t in current if t["key"] not in keys] + list(tags)
                return {}
        raise client_error("ResourceNotFoundException", "The specified resource could not be found.")

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
def running_engine(fake: FakeEcs, sqs_factory: Any = None, **options: Any) -> Iterator[Engine]:
    settings = settings_from_mapping({**OPTIONS, **options})

    async def factory() -> tuple[Any, contextlib.AsyncExitStack]:
        return fake, contextlib.AsyncExitStack()

    with started(Engine(settings, m.Channel(), client_factory=factory, sqs_factory=sqs_factory)) as engine:
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
