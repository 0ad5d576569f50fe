"""Listing and deleting task definitions, as ECS does (the clean-up of derived definitions uses them):
ListTaskDefinitionFamilies, ListTaskDefinitions and DeleteTaskDefinitions.

ECS's rules kept here (botocore model docs): ListTaskDefinitions' ``familyPrefix`` is a *full* family
name; INACTIVE revisions are listed only while a task still uses them; DeleteTaskDefinitions takes at most
10 revisions, each named with its revision, deletes only INACTIVE ones (ACTIVE ones come back in
``failures``) and moves them to DELETE_IN_PROGRESS, where they stay until no task uses them; then they are
gone (describe, run and list no longer find them), and a family with nothing left disappears. Revision
numbers are never reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ecs_executor.local_ecs.model import STOPPED, TaskDefinition, invalid
from ecs_executor.local_ecs.registry import DELETE_IN_PROGRESS, GONE, Registry
from ecs_executor.request.ecs_rules import MAX_LIST_RESULTS

MAX_DELETE = 10
NOT_INACTIVE = (
    "The specified task definition is still in ACTIVE status. Please deregister the target and try again."
)
NOT_FOUND = "The specified task definition does not exist."
NO_REVISION = "The task definition revision must be specified."

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def definition_operations(registry: Registry) -> dict[str, Handler]:
    ops = DefinitionOps(registry)
    return {
        "ListTaskDefinitionFamilies": ops.list_task_definition_families,
        "ListTaskDefinitions": ops.list_task_definitions,
        "DeleteTaskDefinitions": ops.delete_task_definitions,
    }


def purge_deleted(registry: Registry) -> None:
    """DELETE_IN_PROGRESS revisions that no task uses any more are gone."""
    deleting = [
        d for revisions in registry.families.values() for d in revisions if d.status == DELETE_IN_PROGRESS
    ]
    if not deleting:
        return
    used = {id(t.definition) for t in registry.tasks.values() if t.last_status != STOPPED}
    for d in deleting:
        if id(d) not in used:
            d.status = GONE


class DefinitionOps:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _families(self, region: str) -> Iterable[tuple[str, list[TaskDefinition]]]:
        purge_deleted(self.registry)
        for (r, family), revisions in sorted(self.registry.families.items()):
            if r == region:
                yield family, revisions

    def list_task_definition_families(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        prefix = str(params.get("familyPrefix") or "")
        status = _enum(params, "status", ("ACTIVE", "INACTIVE", "ALL"), "ALL")
        names: list[str] = []
        for family, revisions in self._families(region):
            statuses = {d.status for d in revisions}
            if not family.startswith(prefix) or statuses <= {GONE}:
                continue  # a family with every revision deleted disappears
            # ACTIVE: has an ACTIVE revision; INACTIVE: has none; ALL (the default): both.
            if status == "ALL" or (status == "ACTIVE") == ("ACTIVE" in statuses):
                names.append(family)
        return _page(names, "families", params)

    def list_task_definitions(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        family = params.get("familyPrefix")
        status = _enum(params, "status", ("ACTIVE", "INACTIVE", DELETE_IN_PROGRESS), "ACTIVE")
        _enum(params, "sort", ("ASC", "DESC"), "ASC")
        in_use = self._used_by_tasks() if status == "INACTIVE" else set()
        arns = [
            d.arn
            for name, revisions in self._families(region)
            if family is None or name == family
            for d in revisions
            if d.status == status and (status != "INACTIVE" or id(d) in in_use)
        ]
        if params.get("sort") == "DESC":
            arns.reverse()
        return _page(arns, "taskDefinitionArns", params)

    def _used_by_tasks(self) -> set[int]:
        return {id(t.definition) for t in self.registry.tasks.values() if t.last_status != STOPPED}

    def delete_task_definitions(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        identifiers = params.get("taskDefinitions") or []
        if not identifiers:
            raise invalid("taskDefinitions can not be empty.")
        if len(identifiers) > MAX_DELETE:
            raise invalid(f"taskDefinitions can have at most {MAX_DELETE} items.")
        purge_deleted(self.registry)
        deleted: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        for identifier in dict.fromkeys(str(i) for i in identifiers):
            ref = identifier.split(":task-definition/", 1)[-1]
            definition = self.registry.find_definition(region, identifier) if ":" in ref else None
            if ":" not in ref:
                failures.append({"arn": identifier, "reason": NO_REVISION})
            elif definition is None or definition.status == GONE:
                failures.append({"arn": identifier, "reason": NOT_FOUND})
            elif definition.status == "ACTIVE":
                failures.append({"arn": definition.arn, "reason": NOT_INACTIVE})
            else:
                if definition.status == "INACTIVE":
                    definition.status = DELETE_IN_PROGRESS
                    definition.spec["deleteRequestedAt"] = self.registry.clock()
                deleted.append(definition.to_dict())
        purge_deleted(self.registry)
        return {"taskDefinitions": deleted, "failures": failures}


def _enum(params: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """botocore does not check enums; ECS refuses a value outside one."""
    value = params.get(name, default)
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    return str(value)


def _page(items: list[str], key: str, params: dict[str, Any]) -> dict[str, Any]:
    limit = params.get("maxResults", MAX_LIST_RESULTS)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_RESULTS:
        raise invalid(f"maxResults must be between 1 and {MAX_LIST_RESULTS}.")
    token = params.get("nextToken")
    start = 0
    if token:
        if not isinstance(token, str) or not token.startswith("p") or not token[1:].isdigit():
            raise invalid("Invalid nextToken.")
        start = int(token[1:])
    answer: dict[str, Any] = {key: items[start : start + limit]}
    if start + limit < len(items):
        answer["nextToken"] = f"p{start + limit}"
    return answer
