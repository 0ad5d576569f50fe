"""The ECS operations: each request dispatched, applied to the registry and answered as real ECS does.

What ECS refuses in a request's values is ``validation.py``'s; the records' shapes are ``model.py``'s.

Each operation is synchronous (no ``await``), so a RunTask is applied atomically with respect to other
calls: a clientToken check and the tasks it creates can never interleave with a concurrent retry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from ecs_executor.local_ecs import access
from ecs_executor.local_ecs.definition_ops import definition_operations
from ecs_executor.local_ecs.faults import PROVISIONING_LIMIT, SHORTAGE_REASONS, Faults
from ecs_executor.local_ecs.model import (
    ACCOUNT_ID,
    RUNNING,
    STOPPED,
    USER_STOPPED_REASON,
    EcsError,
    TaskDefinition,
    cluster_arn,
    cluster_name_of,
    invalid,
)
from ecs_executor.local_ecs.registry import Registry
from ecs_executor.local_ecs.runner import Runner
from ecs_executor.local_ecs.validation import NAME, task_definition_spec, validate_run_task, validate_tags
from ecs_executor.request.ecs_rules import (
    MAX_DESCRIBE_CLUSTERS,
    MAX_DESCRIBE_TASKS,
    MAX_LIST_RESULTS,
    is_type_problem,
    request_problems,
    resolve_launch_target,
)

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _merge_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {tag["key"]: tag["value"] for tag in current}
    merged.update({tag["key"]: tag["value"] for tag in new})
    return [{"key": key, "value": value} for key, value in merged.items()]


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["after"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise invalid("Invalid nextToken.") from exc


class EcsApi:
    """Dispatches one parsed ECS request to its operation."""

    def __init__(self, registry: Registry, runner: Runner, faults: Faults) -> None:
        self.registry = registry
        self.runner = runner
        self.faults = faults
        self.operations: dict[str, Handler] = {
            "CreateCluster": self.create_cluster,
            "DescribeClusters": self.describe_clusters,
            "ListClusters": self.list_clusters,
            "RegisterTaskDefinition": self.register_task_definition,
            "DeregisterTaskDefinition": self.deregister_task_definition,
            "DescribeTaskDefinition": self.describe_task_definition,
            "RunTask": self.run_task,
            "DescribeTasks": self.describe_tasks,
            "StopTask": self.stop_task,
            "ListTasks": self.list_tasks,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }
        self.operations.update(definition_operations(registry))

    def call(self, operation: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self.operations.get(operation)
        if handler is None:
            raise EcsError("UnknownOperationException", f"Operation {operation} is not supported.")
        access.check_unscoped(self.faults.knobs.deny_actions, operation)
        problem = request_problems(operation, params)
        if problem is not None:
            # Like ECS: a value of the wrong JSON type fails to deserialize, anything else is invalid.
            raise EcsError(
                "SerializationException" if is_type_problem(problem) else "InvalidParameterException", problem
            )
        return handler(region, params)

    def fargate_launches(self, region: str, params: dict[str, Any]) -> int:
        """How many Fargate task launches a RunTask asks for (the Fargate bucket counts tasks)."""
        cluster = self.registry.find_cluster(region, str(params.get("cluster") or "default"))
        try:
            launch_type, _ = resolve_launch_target(params, cluster.default_strategy if cluster else None)
        except (AttributeError, IndexError, KeyError, TypeError):
            return 0  # malformed: validation answers it, and no task is launched

        if launch_type == "FARGATE":
            count = params.get("count", 1)
            return count if isinstance(count, int) and count > 0 else 1
        return 0

    # Clusters -------------------------------------------------------------------------------------

    def create_cluster(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("clusterName") or "default"
        if not NAME.match(name):
            raise invalid("Cluster name can have up to 255 letters, numbers, hyphens and underscores.")
        params = {**params, "tags": validate_tags(params.get("tags"))}
        cluster = self.registry.create_cluster(region, name, params)
        return {"cluster": cluster.to_dict({"TAGS", "SETTINGS", "CONFIGURATIONS"})}

    def describe_clusters(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        identifiers = params.get("clusters") or ["default"]
        if len(identifiers) > MAX_DESCRIBE_CLUSTERS:
            raise invalid(f"Clusters cannot have more than {MAX_DESCRIBE_CLUSTERS} elements.")
        include = set(params.get("include") or [])
        clusters, failures = [], []
        for identifier in identifiers:
            cluster = self.registry.find_cluster(region, identifier)
            if cluster is None:
                failures.append(
                    {"arn": cluster_arn(region, cluster_name_of(identifier)), "reason": "MISSING"}
                )
            else:
                clusters.append(cluster.to_dict(include))
        return {"clusters": clusters, "failures": failures}

    def list_clusters(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"clusterArns": [c.arn for (r, _), c in self.registry.clusters.items() if r == region]}

    # Task definitions -----------------------------------------------------------------------------

    def register_task_definition(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        access.check_register(self.faults.knobs.deny_actions, region, params)
        definition = self.registry.register(region, task_definition_spec(params))
        return {"taskDefinition": definition.to_dict(), "tags": definition.tags}

    def deregister_task_definition(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        identifier = str(params.get("taskDefinition") or "")
        definition = self.registry.find_definition(region, identifier) if ":" in identifier else None
        if definition is None:
            raise EcsError("ClientException", "The specified task definition does not exist.")
        if definition.status == "ACTIVE":
            definition.status = "INACTIVE"
            definition.spec["deregisteredAt"] = self.registry.clock()
        return {"taskDefinition": definition.to_dict()}

    def describe_task_definition(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        definition = self.registry.find_definition(region, str(params.get("taskDefinition") or ""))
        if definition is None:
            raise EcsError("ClientException", "Unable to describe task definition.")
        answer: dict[str, Any] = {"taskDefinition": definition.to_dict()}
        if "TAGS" in (params.get("include") or []):
            answer["tags"] = definition.tags
        return answer

    # Tasks ----------------------------------------------------------------------------------------

    def _run_task_definition(self, region: str, params: dict[str, Any]) -> TaskDefinition:
        identifier = params.get("taskDefinition")
        if not identifier:
            raise invalid("taskDefinition can not be blank.")
        definition = self.registry.find_definition(region, str(identifier))
        if definition is None:
            raise EcsError("ClientException", f"Unable to find task definition '{identifier}'.")
        if definition.status != "ACTIVE":
            raise EcsError("ClientException", f"TaskDefinition '{identifier}' is inactive.")
        return definition

    def run_task(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.registry.cluster(region, params.get("cluster"))
        definition = self._run_task_definition(region, params)
        count = validate_run_task(cluster, definition, params)
        access.check_run(self.faults.knobs.deny_actions, definition, params)
        token = params.get("clientToken")
        # A digest, not the request: 10,000 tokens must not pin 10,000 copies of the overrides.
        request = _compact({k: v for k, v in params.items() if k != "clientToken"})
        fingerprint = hashlib.sha256(request.encode()).hexdigest()
        if token is not None and token in cluster.client_tokens:
            seen_fingerprint, arns, failures = cluster.client_tokens[token]
            if seen_fingerprint != fingerprint:
                raise EcsError(
                    "ConflictException",
                    "The RunTask request could not be processed due to conflicts. The provided clientToken "
                    "is already in use with a different RunTask request.",
                    resourceIds=arns,
                )
            self.registry.deduplicated += 1
            tasks = [task.to_dict() for arn in arns if (task := self.registry.find_task(arn)) is not None]
            return {"tasks": tasks, "failures": failures}
        shortage = self.faults.capacity_shortage()
        if shortage == "provisioning_limit":
            raise EcsError("ClientException", PROVISIONING_LIMIT)
        image = str(next(iter(definition.containers.values())).get("image", ""))
        created, failures = [], []
        for _ in range(count):
            reason = (
                SHORTAGE_REASONS.get(shortage or "")
                or self.faults.spot_shortage(resolve_launch_target(params, cluster.default_strategy)[1])
                or self.faults.run_task_failure()
            )
            if reason is not None:
                instance = (
                    f"arn:aws:ecs:{region}:{ACCOUNT_ID}:container-instance/{cluster.name}/{uuid.uuid4().hex}"
                )
                failures.append({"arn": instance, "reason": reason})
                continue
            task = self.registry.new_task(cluster, definition, params)
            spot = self.faults.spot_before_start(task.capacity_provider_name)
            self.runner.launch(task, self.faults.fail_to_start(image) or spot)
            created.append(task)
        if token is not None and created:
            cluster.client_tokens[token] = (fingerprint, [task.arn for task in created], failures)
        return {"tasks": [task.to_dict() for task in created], "failures": failures}

    def describe_tasks(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.registry.cluster(region, params.get("cluster"))
        identifiers = params.get("tasks") or []
        if not identifiers:
            raise invalid("Tasks cannot be empty.")
        if len(identifiers) > MAX_DESCRIBE_TASKS:
            raise invalid(f"Tasks cannot have more than {MAX_DESCRIBE_TASKS} elements.")
        include_tags = "TAGS" in (params.get("include") or [])
        tasks, failures = [], []
        for identifier in dict.fromkeys(identifiers):
            task = self.registry.find_task(str(identifier), cluster)
            if task is None:
                failures.append({"arn": identifier, "reason": "MISSING"})
            else:
                tasks.append(task.to_dict(include_tags))
        return {"tasks": tasks, "failures": failures}

    def stop_task(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.registry.cluster(region, params.get("cluster"))
        identifier = params.get("task")
        task = self.registry.find_task(str(identifier or ""), cluster) if identifier else None
        if task is None:
            raise invalid("The referenced task was not found.")
        reason = params.get("reason") or USER_STOPPED_REASON
        if len(reason) > 255:
            raise invalid("Reason length must be at most 255.")
        self.runner.stop(task, reason)
        return {"task": task.to_dict()}

    def list_tasks(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.registry.cluster(region, params.get("cluster"))
        limit = params.get("maxResults", MAX_LIST_RESULTS)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_RESULTS:
            raise invalid(f"maxResults must be between 1 and {MAX_LIST_RESULTS}.")
        desired = params.get("desiredStatus") or RUNNING
        if desired not in (RUNNING, "PENDING", STOPPED):
            raise invalid("desiredStatus must be one of RUNNING, PENDING, STOPPED.")
        after = _decode_token(params["nextToken"]) if params.get("nextToken") else 0
        family, started_by, launch_type = (
            params.get("family"),
            params.get("startedBy"),
            params.get("launchType"),
        )
        arns: list[str] = []
        last_seq = 0
        for task in self.registry.iter_tasks(cluster, desired, after):
            if family is not None and task.definition.family != family:
                continue
            if started_by is not None and task.started_by != started_by:
                continue
            if launch_type is not None and task.launch_type != launch_type:
                continue
            if len(arns) == limit:
                return {"taskArns": arns, "nextToken": _encode_token(last_seq)}
            arns.append(task.arn)
            last_seq = task.seq
        return {"taskArns": arns}

    # Tags -----------------------------------------------------------------------------------------

    def _tag_owner(self, region: str, arn: str) -> Any:
        owner: Any = None
        if ":task-definition/" in arn:
            owner = self.registry.find_definition(region, arn)
        elif ":task/" in arn:
            owner = self.registry.find_task(arn)
        elif ":cluster/" in arn:
            owner = self.registry.find_cluster(region, arn)
        if owner is None:
            raise EcsError("ResourceNotFoundException", "The specified resource could not be found.")
        return owner

    def tag_resource(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        access.check_tag(self.faults.knobs.deny_actions, str(params.get("resourceArn") or ""))
        owner = self._tag_owner(region, str(params.get("resourceArn") or ""))
        owner.tags = _merge_tags(owner.tags or [], validate_tags(params.get("tags")))
        return {}

    def untag_resource(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._tag_owner(region, str(params.get("resourceArn") or ""))
        drop = set(params.get("tagKeys") or [])
        owner.tags = [tag for tag in owner.tags or [] if tag["key"] not in drop]
        return {}

    def list_tags_for_resource(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        owner = self._tag_owner(region, str(params.get("resourceArn") or ""))
        return {"tags": list(owner.tags or [])}
