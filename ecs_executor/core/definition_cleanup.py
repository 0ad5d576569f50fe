"""Which derived task definitions the clean-up deregisters, and which of those it then deletes. Pure:
descriptions, the ARNs in use, the options and the clock come in as values.

A derived definition is one this executor registered (``request/derived_definition.py``): its family is
``<base family>-x<16 hex>``, and its tags say ``ecs-executor:managed=true``. Only the tag is trusted: a
definition without it is never touched, whatever its family is called. Families are per content hash, so
"the newest N kept" counts per *base* family (the ``ecs-executor:base`` tag): keeping one per derived
family would keep every derived definition ever registered.

A definition is unused when its ``ecs-executor:last-used`` tag (every scheduler that runs it refreshes it,
see the design) or, without one, its registration is older than the retention, and no task this
scheduler tracks or any RUNNING/PENDING task in our clusters names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The tag keys and the family rule the "definitions" part registers with (unified with
# request/derived_definition.py at merge).
MANAGED_TAG = "ecs-executor:managed"
HASH_TAG = "ecs-executor:hash"
BASE_TAG = "ecs-executor:base"
LAST_USED_TAG = "ecs-executor:last-used"
DERIVED_FAMILY = re.compile(r"-x[0-9a-f]{16}$")
DERIVED_SUFFIX_LENGTH = 18  # "-x" and 16 hex digits
MAX_FAMILY = 255
# DeleteTaskDefinitions takes at most this many revisions a call (botocore model doc).
MAX_DELETE_BATCH = 10


@dataclass(frozen=True, slots=True)
class CleanupOptions:
    retention: float  # seconds unused before deregistration
    keep: int  # newest derived definitions kept per base family, used or not


@dataclass(frozen=True, slots=True)
class DerivedDefinition:
    """One revision as DescribeTaskDefinition (include TAGS) shows it."""

    arn: str
    family: str
    revision: int
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    registered_at: float | None = None  # epoch seconds

    @classmethod
    def from_description(cls, answer: Mapping[str, Any]) -> DerivedDefinition:
        """From DescribeTaskDefinition's whole answer: ``taskDefinition`` and ``tags``."""
        td = answer.get("taskDefinition") or {}
        tags = {str(t.get("key")): str(t.get("value", "")) for t in answer.get("tags") or []}
        return cls(
            arn=str(td.get("taskDefinitionArn", "")),
            family=str(td.get("family", "")),
            revision=int(td.get("revision") or 0),
            status=str(td.get("status", "")),
            tags=tags,
            registered_at=_epoch(td.get("registeredAt")),
        )

    @property
    def managed(self) -> bool:
        return self.tags.get(MANAGED_TAG) == "true"

    @property
    def ref(self) -> str:
        return f"{self.family}:{self.revision}"

    @property
    def base_family(self) -> str:
        """The base's family from the base tag (``family:revision``), else the family minus the suffix."""
        base = self.tags.get(BASE_TAG, "")
        if base:
            return base.rsplit(":", 1)[0] if ":" in base else base
        return DERIVED_FAMILY.sub("", self.family)

    @property
    def last_used(self) -> float | None:
        """The last-used tag (epoch seconds), else the registration time; None when neither is known."""
        tagged = self.tags.get(LAST_USED_TAG)
        if tagged is not None:
            try:
                return float(tagged)
            except ValueError:
                pass  # malformed: fall back to the registration time
        return self.registered_at


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    timestamp = getattr(value, "timestamp", None)  # botocore parses timestamps to datetimes
    return float(timestamp()) if callable(timestamp) else None


def revision_ref(arn_or_ref: str) -> str:
    """``family:revision`` from a task definition ARN or reference (a bare family stays as it is)."""
    return arn_or_ref.rsplit("task-definition/", 1)[-1]


def is_derived_family(name: str) -> bool:
    return bool(DERIVED_FAMILY.search(name))


def family_prefix(base_family: str) -> str:
    """The ListTaskDefinitionFamilies prefix that finds a base's derived families (a base family too long
    for the suffix is cut when deriving)."""
    return base_family[: MAX_FAMILY - DERIVED_SUFFIX_LENGTH]


def base_family_of(task_definition: str) -> str:
    """The family of a task definition option: a family, ``family:revision`` or an ARN."""
    return revision_ref(task_definition).split(":", 1)[0]


def to_deregister(
    definitions: Iterable[DerivedDefinition],
    in_use: Iterable[str],
    options: CleanupOptions,
    now: float,
) -> list[DerivedDefinition]:
    """The ACTIVE managed revisions to deregister, least recently used first."""
    used = {revision_ref(a) for a in in_use}
    groups: dict[str, list[DerivedDefinition]] = {}
    for d in definitions:
        if d.managed and d.status == "ACTIVE":
            groups.setdefault(d.base_family, []).append(d)
    due: list[DerivedDefinition] = []
    for group in groups.values():
        group.sort(key=lambda d: (d.last_used or 0.0, d.revision), reverse=True)
        for d in group[options.keep :]:
            last = d.last_used
            if d.ref not in used and last is not None and now - last > options.retention:
                due.append(d)
    due.sort(key=lambda d: (d.last_used or 0.0, d.arn))
    return due


def to_delete(deregistered: Iterable[str], in_use: Iterable[str]) -> list[list[str]]:
    """What this scheduler deregistered, in DeleteTaskDefinitions batches; one still in use waits (ECS
    would hold it in DELETE_IN_PROGRESS anyway)."""
    used = {revision_ref(a) for a in in_use}
    ready = sorted(a for a in dict.fromkeys(deregistered) if revision_ref(a) not in used)
    return [ready[i : i + MAX_DELETE_BATCH] for i in range(0, len(ready), MAX_DELETE_BATCH)]
