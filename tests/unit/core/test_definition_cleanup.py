"""The clean-up's decisions: only what we registered, never what is in use, the newest kept, retention."""

from __future__ import annotations

from datetime import datetime, timezone

from ecs_executor.core.definition_cleanup import (
    CleanupOptions,
    DerivedDefinition,
    base_family_of,
    family_prefix,
    is_derived_family,
    revision_ref,
    to_delete,
    to_deregister,
)

NOW = 1_800_000_000.0
DAY = 86400.0
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
OPTIONS = CleanupOptions(retention=7 * DAY, keep=1)


def derived(
    family: str = "airflow-x0123456789abcdef",
    revision: int = 1,
    *,
    last_used: float | None = None,
    registered: float | None = NOW - 30 * DAY,
    status: str = "ACTIVE",
    managed: bool = True,
    base: str = "airflow:3",
) -> DerivedDefinition:
    tags = {"ecs-executor:hash": "ab" * 32}
    if managed:
        tags["ecs-executor:managed"] = "true"
    if base:
        tags["ecs-executor:base"] = base
    if last_used is not None:
        tags["ecs-executor:last-used"] = str(int(last_used))
    return DerivedDefinition(f"{ARN}{family}:{revision}", family, revision, status, tags, registered)


def arns(defs: list[DerivedDefinition]) -> list[str]:
    return [d.arn for d in defs]


def test_stale_definitions_go_but_the_newest_per_base_family_stays() -> None:
    old = derived("airflow-x1111111111111111", last_used=NOW - 20 * DAY)
    older = derived("airflow-x2222222222222222", last_used=NOW - 30 * DAY)
    newest = derived("airflow-x3333333333333333", last_used=NOW - 10 * DAY)
    assert arns(to_deregister([old, older, newest], [], OPTIONS, NOW)) == [older.arn, old.arn]


def test_keep_counts_per_base_family_and_zero_keeps_nothing() -> None:
    a = derived("airflow-x1111111111111111", last_used=NOW - 20 * DAY)
    b = derived("other-x2222222222222222", last_used=NOW - 20 * DAY, base="other:1")
    assert to_deregister([a, b], [], OPTIONS, NOW) == []
    assert arns(to_deregister([a, b], [], CleanupOptions(7 * DAY, 0), NOW)) == sorted([a.arn, b.arn])
    two = CleanupOptions(7 * DAY, 2)
    c = derived("airflow-x4444444444444444", last_used=NOW - 40 * DAY)
    assert arns(to_deregister([a, c, b], [], two, NOW)) == []


def test_recently_used_definitions_stay() -> None:
    recent = derived("airflow-x1111111111111111", last_used=NOW - DAY)
    assert to_deregister([recent], [], CleanupOptions(7 * DAY, 0), NOW) == []
    # Just at the retention: not yet.
    edge = derived("airflow-x1111111111111111", last_used=NOW - 7 * DAY)
    assert to_deregister([edge], [], CleanupOptions(7 * DAY, 0), NOW) == []


def test_without_a_last_used_tag_the_registration_time_counts() -> None:
    options = CleanupOptions(7 * DAY, 0)
    fresh = derived(registered=NOW - DAY)
    stale = derived("airflow-x1111111111111111", registered=NOW - 8 * DAY)
    unknown = derived("airflow-x2222222222222222", registered=None)
    assert arns(to_deregister([fresh, stale, unknown], [], options, NOW)) == [stale.arn]
    # A malformed tag falls back to the registration time too.
    bad = DerivedDefinition(
        stale.arn, stale.family, 1, "ACTIVE", {**stale.tags, "ecs-executor:last-used": "soon"}, NOW - 8 * DAY
    )
    assert bad.last_used == NOW - 8 * DAY


def test_a_last_used_tag_newer_than_registration_keeps_it() -> None:
    d = derived(registered=NOW - 30 * DAY, last_used=NOW - 60)
    assert to_deregister([d], [], CleanupOptions(7 * DAY, 0), NOW) == []


def test_never_a_definition_without_our_managed_tag() -> None:
    options = CleanupOptions(60, 0)
    users = derived(managed=False, last_used=NOW - 365 * DAY)
    wrong_value = DerivedDefinition(
        users.arn, users.family, 1, "ACTIVE", {"ecs-executor:managed": "yes"}, NOW - 365 * DAY
    )
    assert to_deregister([users, wrong_value], [], options, NOW) == []


def test_never_one_in_use_by_arn_or_reference() -> None:
    options = CleanupOptions(60, 0)
    a = derived("airflow-x1111111111111111", last_used=NOW - 30 * DAY)
    b = derived("airflow-x2222222222222222", last_used=NOW - 30 * DAY)
    c = derived("airflow-x3333333333333333", last_used=NOW - 30 * DAY)
    in_use = [a.arn, "airflow-x2222222222222222:1"]
    assert arns(to_deregister([a, b, c], in_use, options, NOW)) == [c.arn]


def test_only_active_revisions_are_deregistered() -> None:
    options = CleanupOptions(60, 0)
    inactive = derived(status="INACTIVE", last_used=NOW - 30 * DAY)
    deleting = derived("airflow-x1111111111111111", status="DELETE_IN_PROGRESS", last_used=NOW - 30 * DAY)
    assert to_deregister([inactive, deleting], [], options, NOW) == []


def test_duplicate_revisions_of_one_hash_keep_the_newest() -> None:
    # Two schedulers raced: two revisions of one derived family, equally old.
    r1 = derived(revision=1, last_used=NOW - 30 * DAY)
    r2 = derived(revision=2, last_used=NOW - 30 * DAY)
    assert arns(to_deregister([r1, r2], [], OPTIONS, NOW)) == [r1.arn]


def test_base_family_without_a_base_tag_comes_from_the_family() -> None:
    d = derived("etl-worker-x0123456789abcdef", base="")
    assert d.base_family == "etl-worker"
    assert derived(base="airflow:12").base_family == "airflow"


def test_from_description_reads_tags_status_and_time() -> None:
    answer = {
        "taskDefinition": {
            "taskDefinitionArn": f"{ARN}airflow-x0123456789abcdef:4",
            "family": "airflow-x0123456789abcdef",
            "revision": 4,
            "status": "ACTIVE",
            "registeredAt": datetime.fromtimestamp(NOW, timezone.utc),
        },
        "tags": [{"key": "ecs-executor:managed", "value": "true"}, {"key": "team", "value": "x"}],
    }
    d = DerivedDefinition.from_description(answer)
    assert (d.ref, d.status, d.managed, d.registered_at, d.last_used) == (
        "airflow-x0123456789abcdef:4",
        "ACTIVE",
        True,
        NOW,
        NOW,
    )
    assert DerivedDefinition.from_description({"taskDefinition": {"family": "f"}}).managed is False


def test_delete_batches_of_ten_skipping_those_in_use() -> None:
    deregistered = [f"{ARN}airflow-x{i:016x}:1" for i in range(23)]
    batches = to_delete(deregistered + deregistered[:2], [deregistered[0]])
    assert [len(b) for b in batches] == [10, 10, 2]
    assert all(deregistered[0] not in b for b in batches)
    assert to_delete([], []) == []


def test_names() -> None:
    assert is_derived_family("airflow-x0123456789abcdef")
    assert not is_derived_family("airflow")
    assert not is_derived_family("airflow-x0123456789ABCDEF")
    assert revision_ref(f"{ARN}fam:3") == "fam:3"
    assert base_family_of(f"{ARN}fam:3") == base_family_of("fam:3") == base_family_of("fam") == "fam"
    assert family_prefix("a" * 300) == "a" * 237
