"""The rows of managed (derived) task definitions: what their clean-up lists, probed; what registering and
removing them needs, named.

The clean-up's listings are read-only, so they are made once with the executor's own credentials
(``maxResults=1``, the same arguments the clean-up uses): a denial is a FAIL naming the permission.
Registering, tagging, passing the roles, deregistering and deleting cannot be tried without changing
the account (ECS has no dry run), so that row stays a SKIP that names them.
"""

from __future__ import annotations

from typing import Any

from ecs_executor.aws.clients import describe_error, error_code
from ecs_executor.check.rows import ACCESS_DENIED_CODES, CheckResult, Probe, skip
from ecs_executor.core.definition_cleanup import base_family_of, family_prefix

CLEANUP_ROW = "definition clean-up"
REGISTER_ROW = "derived definitions"
LISTING_FIX = (
    "Allow {action} to the scheduler's role (deploy/ecs-executor.yaml grants it): without it the clean-up "
    "of derived task definitions fails every sweep and they pile up (ECS keeps at most 1,000,000 revisions "
    "per family)."
)


def check_derived_definitions(p: Probe) -> list[CheckResult]:
    """The clean-up's listing rights (probed), then the rights that cannot be probed (a SKIP)."""
    return [_listing_result(p), _registration_result(p)]


def _listing_result(p: Probe) -> CheckResult:
    base = base_family_of(str(p.base["taskDefinition"]))
    ecs = p.clients.client("ecs")
    probes: list[tuple[str, Any]] = [
        (
            "ecs:ListTaskDefinitionFamilies",
            lambda: ecs.list_task_definition_families(
                familyPrefix=family_prefix(base), status="ACTIVE", maxResults=1
            ),
        ),
        (
            "ecs:ListTaskDefinitions",
            lambda: ecs.list_task_definitions(familyPrefix=base, status="ACTIVE", maxResults=1),
        ),
    ]
    for action, call in probes:
        try:
            call()
        except Exception as exc:
            if error_code(exc)[0] in ACCESS_DENIED_CODES:
                return CheckResult(
                    CLEANUP_ROW,
                    False,
                    f"{action} denied: {describe_error(exc)}",
                    LISTING_FIX.format(action=action),
                )
            return CheckResult(
                CLEANUP_ROW,
                False,
                f"{action} failed: {describe_error(exc)}",
                "The clean-up of derived task definitions makes this call every sweep; fix what the error "
                "names.",
            )
    return CheckResult(
        CLEANUP_ROW,
        True,
        f"may list the families derived from {base!r} and their revisions "
        "(ecs:ListTaskDefinitionFamilies, ecs:ListTaskDefinitions)",
    )


def _registration_result(p: Probe) -> CheckResult:
    """Registering derived definitions (tasks' own image, runtime_platform, gpu) and removing them cannot
    be tried without doing it: the row says what they need instead of pretending to know."""
    try:
        td = p.task_definition()
    except Exception:  # the task definition row already reports it
        td = {}
    roles = [str(td[key]) for key in ("taskRoleArn", "executionRoleArn") if td.get(key)]
    pass_role = (
        f"iam:PassRole on {', '.join(roles)}" if roles else "no iam:PassRole (the definition names no role)"
    )
    return skip(
        REGISTER_ROW,
        "not verifiable without registering one (no dry run); tasks setting image, runtime_platform or gpu "
        f"need ecs:RegisterTaskDefinition, ecs:TagResource on the derived families, {pass_role}; "
        "their clean-up also needs ecs:DeregisterTaskDefinition and ecs:DeleteTaskDefinitions, and "
        "ecs:ListTasks and ecs:DescribeTasks on the cluster (not probed)",
    )
