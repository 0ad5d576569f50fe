"""Derived task definitions: what RunTask cannot override (image, runtimePlatform, GPU) as a new task
definition built from the base one. Pure: no I/O, no clock.

One family per content hash (``<base family>-x<16 hex>``), so two different definitions never share a
family: ECS refuses concurrent registrations in one family ("Too many concurrent attempts"), and then
only schedulers registering the very same content can meet. The full hash is also a tag, which is how a
restarted or another scheduler finds the definition again instead of registering it once more (ECS has
no idempotency token for RegisterTaskDefinition).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ecs_executor.request.ecs_rules import MAX_FAMILY, MAX_TAG_VALUE, MAX_TAGS, input_members
from ecs_executor.request.task_settings import Derivation

MANAGED_TAG = "ecs-executor:managed"
HASH_TAG = "ecs-executor:hash"
BASE_TAG = "ecs-executor:base"
LAST_USED_TAG = "ecs-executor:last-used"
#: Our tags on every derived definition (the last-used one is added by the engine, which has a clock).
OWN_TAGS = 4
FAMILY_MARK = "-x"
FAMILY_HASH_CHARS = 16

#: What DescribeTaskDefinition returns but RegisterTaskDefinition does not take.
READ_ONLY_FIELDS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
)
_SORTED_BY_NAME = ("environment", "secrets")


class NotDerivable(ValueError):
    """The base task definition cannot carry the derivation (e.g. it lacks our container)."""


def derived_family(base_family: str, digest: str) -> str:
    """``<base family>-x<hash[:16]>``, the base family cut so the whole fits ECS's 255 characters."""
    suffix = f"{FAMILY_MARK}{digest[:FAMILY_HASH_CHARS]}"
    return base_family[: MAX_FAMILY - len(suffix)] + suffix


def register_request(
    base: Mapping[str, Any],
    container_name: str,
    derivation: Derivation,
    base_tags: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """RegisterTaskDefinition kwargs: ``base`` (DescribeTaskDefinition's ``taskDefinition``) minus its
    read-only fields, with ``derivation`` applied to our container and the runtime platform, in its own
    family, tagged as ours (``base_tags``: the base's tags, kept where the 50-tag limit allows)."""
    accepted = input_members("RegisterTaskDefinition")
    request = {
        key: copy.deepcopy(value)
        for key, value in base.items()
        if key not in READ_ONLY_FIELDS and key in accepted and key != "tags"
    }
    containers = request.get("containerDefinitions") or []
    ours = next((c for c in containers if c.get("name") == container_name), None)
    if ours is None:
        raise NotDerivable(
            f"task definition {base.get('family')!r} has no container named {container_name!r} "
            "(option container_name) to apply image/runtime_platform/gpu to"
        )
    if derivation.image is not None:
        ours["image"] = derivation.image
    if derivation.gpu is not None:
        kept = [r for r in ours.get("resourceRequirements") or [] if r.get("type") != "GPU"]
        ours["resourceRequirements"] = [*kept, {"type": "GPU", "value": str(derivation.gpu)}]
    platform = dict(request.get("runtimePlatform") or {})
    if derivation.cpu_architecture is not None:
        platform["cpuArchitecture"] = derivation.cpu_architecture
    if derivation.operating_system_family is not None:
        platform["operatingSystemFamily"] = derivation.operating_system_family
    if platform:
        request["runtimePlatform"] = platform
    base_family = str(base.get("family") or "")
    digest = definition_hash(request)
    request["family"] = derived_family(base_family, digest)
    base_ref = f"{base_family}:{base.get('revision')}"[:MAX_TAG_VALUE]
    own = [
        {"key": MANAGED_TAG, "value": "true"},
        {"key": HASH_TAG, "value": digest},
        {"key": BASE_TAG, "value": base_ref},
    ]
    request["tags"] = own + _inherited_tags(base_tags)
    return request


def _inherited_tags(tags: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The base's tags a derived definition may carry: none AWS reserves (``aws:``) and none of ours,
    at most what leaves room for our own under ECS's 50."""
    kept = [
        {"key": str(t["key"]), "value": str(t.get("value", ""))}
        for t in tags
        if not str(t.get("key", "")).lower().startswith(("aws:", "ecs-executor:"))
    ]
    return kept[: MAX_TAGS - OWN_TAGS]


def definition_hash(request: Mapping[str, Any]) -> str:
    """sha256 (64 hex) of the definition's content as canonical JSON: sorted keys, environment and secrets
    sorted by name; family and tags excluded (the family is named after this hash, tags are not content)."""
    content = {key: value for key, value in request.items() if key not in ("family", "tags")}
    content["containerDefinitions"] = [
        _canonical_container(c) for c in content.get("containerDefinitions") or []
    ]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical_container(container: Mapping[str, Any]) -> dict[str, Any]:
    canonical = dict(container)
    for key in _SORTED_BY_NAME:
        if isinstance(canonical.get(key), list):
            canonical[key] = sorted(canonical[key], key=lambda e: str(e.get("name", "")))
    return canonical


def tag_value(tags: Sequence[Mapping[str, Any]] | None, key: str) -> str | None:
    """The value of tag ``key`` in an ECS tag list, or None."""
    for tag in tags or ():
        if tag.get("key") == key:
            return str(tag.get("value", ""))
    return None
