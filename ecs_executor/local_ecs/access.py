"""IAM denials as ECS reports them (the ``deny_actions`` knob): which request needs which action.

RegisterTaskDefinition needs ecs:RegisterTaskDefinition, iam:PassRole on each role it names and, with
tags, ecs:TagResource (tag on create); TagResource on a task definition needs ecs:TagResource; RunTask
needs iam:PassRole on the roles its definition or overrides name; the task definition listings
(ListTaskDefinitionFamilies, ListTaskDefinitions) need their own action, on no resource ("*"). The
message is ECS's wording
("... is not authorized to perform: <action> on resource: <arn> because no identity-based policy allows
the <action> action").
"""

from __future__ import annotations

from typing import Any

from ecs_executor.local_ecs.model import ACCOUNT_ID, EcsError, TaskDefinition

CALLER = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/local-ecs-caller/session"


def denial(action: str, resource: str) -> EcsError:
    return EcsError(
        "AccessDeniedException",
        f"User: {CALLER} is not authorized to perform: {action} on resource: {resource} because no "
        f"identity-based policy allows the {action} action",
    )


def _roles(*sources: dict[str, Any] | None) -> list[str]:
    roles = [str(s[key]) for s in sources if s for key in ("taskRoleArn", "executionRoleArn") if s.get(key)]
    return list(dict.fromkeys(roles))


def check_register(denied: list[str], region: str, params: dict[str, Any]) -> None:
    """Raise what ECS answers a RegisterTaskDefinition the caller lacks a permission for."""
    family = str(params.get("family") or "")
    resource = f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{family}:*"
    if "ecs:RegisterTaskDefinition" in denied:
        raise denial("ecs:RegisterTaskDefinition", resource)
    if "iam:PassRole" in denied and (roles := _roles(params)):
        raise denial("iam:PassRole", roles[0])
    if "ecs:TagResource" in denied and params.get("tags"):
        raise denial("ecs:TagResource", resource)


def check_tag(denied: list[str], arn: str) -> None:
    if "ecs:TagResource" in denied and ":task-definition/" in arn:
        raise denial("ecs:TagResource", arn)


def check_run(denied: list[str], definition: TaskDefinition, params: dict[str, Any]) -> None:
    if "iam:PassRole" in denied and (roles := _roles(definition.spec, params.get("overrides"))):
        raise denial("iam:PassRole", roles[0])


#: Operations IAM authorizes on no particular resource: denied as a whole, before anything is read.
UNSCOPED_OPERATIONS = ("ListTaskDefinitionFamilies", "ListTaskDefinitions")


def check_unscoped(denied: list[str], operation: str) -> None:
    if operation in UNSCOPED_OPERATIONS and f"ecs:{operation}" in denied:
        raise denial(f"ecs:{operation}", "*")
