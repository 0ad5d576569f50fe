"""Tunable behaviour of the local ECS endpoint.

One table drives the Python keyword arguments, the CLI flags and the ``/_local_ecs/config`` endpoint, so
the three can never drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_executor.local_ecs.buckets import DEFAULT_BUCKETS
from ecs_executor.local_ecs.timing import PROFILES, TIMING_PROFILES


class KnobError(ValueError):
    """A knob name or value the endpoint cannot use."""


def _rate(value: Any) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within 0..1, got {rate}")
    return rate


def _non_negative(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"must be >= 0, got {number}")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
            return None
        return convert(value)

    return parse


CAPACITY_SHORTAGE_KINDS = ("resource", "unavailable", "provisioning_limit")


def _shortage_kind(value: Any) -> str:
    kind = str(value).strip().lower()
    if kind not in CAPACITY_SHORTAGE_KINDS:
        raise ValueError(f"must be one of {', '.join(CAPACITY_SHORTAGE_KINDS)}, got {value!r}")
    return kind


CONTAINER_RUNNERS = ("process", "podman")


def _container_runner(value: Any) -> str:
    runner = str(value).strip().lower()
    if runner not in CONTAINER_RUNNERS:
        raise ValueError(f"must be one of {', '.join(CONTAINER_RUNNERS)}, got {value!r}")
    return runner


def _timing(value: Any) -> str:
    profile = str(value).strip().lower()
    if profile not in TIMING_PROFILES:
        raise ValueError(f"must be one of {', '.join(TIMING_PROFILES)}, got {value!r}")
    return profile


def _operations(value: Any) -> list[str]:
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return [str(name) for name in value]


#: IAM actions ``deny_actions`` can withhold from the caller (each answered as ECS does when denied).
DENIABLE_ACTIONS = (
    "ecs:RegisterTaskDefinition",
    "ecs:TagResource",
    "iam:PassRole",
    "ecs:ListTaskDefinitionFamilies",
    "ecs:ListTaskDefinitions",
)


def _actions(value: Any) -> list[str]:
    actions = _operations(value)
    unknown = [a for a in actions if a not in DENIABLE_ACTIONS]
    if unknown:
        raise ValueError(f"unknown action(s) {', '.join(unknown)}; known: {', '.join(DENIABLE_ACTIONS)}")
    return actions


def _bucket_overrides(value: Any) -> dict[str, tuple[float, float]]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError('expected {"group": [burst, refill_per_second], ...}')
    parsed: dict[str, tuple[float, float]] = {}
    for group, pair in value.items():
        if group not in DEFAULT_BUCKETS:
            raise ValueError(f"unknown bucket {group!r}; known: {', '.join(DEFAULT_BUCKETS)}")
        burst, refill = pair
        parsed[str(group)] = (_non_negative(burst), _non_negative(refill))
    return parsed


def _meta(parse: Callable[[Any], Any], help_text: str, *, flag: bool = False) -> dict[str, Any]:
    return {"parse": parse, "help": help_text, "flag": flag}


@dataclass
class Knobs:
    """Every behaviour switch; defaults describe a fast, fault-free, unthrottled endpoint."""

    latency_ms: float = field(
        default=0.0, metadata=_meta(_non_negative, "milliseconds added to every ECS call")
    )
    latency_spike_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of calls that get latency_spike_ms on top")
    )
    latency_spike_ms: float = field(
        default=0.0, metadata=_meta(_non_negative, "extra milliseconds for a latency spike")
    )
    throttle: bool = field(
        default=False, metadata=_meta(_bool, "emulate the real ECS per-operation token buckets", flag=True)
    )
    fargate: bool = field(
        default=False,
        metadata=_meta(_bool, "also apply the Fargate task-launch bucket to FARGATE RunTask", flag=True),
    )
    throttle_overrides: dict[str, tuple[float, float]] = field(
        default_factory=dict,
        metadata=_meta(
            _bucket_overrides, 'JSON {"bucket": [burst, refill_per_s]} replacing real-ECS bucket sizes'
        ),
    )
    throttle_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of calls answered with ThrottlingException")
    )
    server_error_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of calls answered with HTTP 500/503")
    )
    reset_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of calls whose connection is closed before applying them")
    )
    lost_reply_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of calls applied, then closed without an answer")
    )
    run_task_failure_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of RunTask tasks reported in failures[]")
    )
    run_task_failure_reason: str = field(
        default="RESOURCE:MEMORY", metadata=_meta(str, "reason used in RunTask failures[]")
    )
    fail_to_start_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of launched tasks that stop with TaskFailedToStart")
    )
    fail_to_start_reason: str | None = field(
        default=None,
        metadata=_meta(
            _optional(str), "stoppedReason for injected start failures (default: a random realistic one)"
        ),
    )
    capacity_shortage_seconds: float = field(
        default=0.0,
        metadata=_meta(
            _non_negative, "for this many seconds from when it is set, RunTask places no task (0: off)"
        ),
    )
    capacity_shortage_kind: str = field(
        default="resource",
        metadata=_meta(
            _shortage_kind,
            "how a capacity shortage shows: resource (failures[] RESOURCE:MEMORY), unavailable "
            "(failures[] 'Capacity is unavailable...'), provisioning_limit (ClientException)",
        ),
    )
    spot_capacity_shortage: bool = field(
        default=False,
        metadata=_meta(
            _bool,
            "RunTask placing a task on FARGATE_SPOT answers failures[] 'Capacity is unavailable at this "
            "time...' while FARGATE places it",
            flag=True,
        ),
    )
    spot_interruption_before_start: bool = field(
        default=False,
        metadata=_meta(
            _bool,
            "every task on FARGATE_SPOT is interrupted before its containers start (stopCode "
            "SpotInterruption)",
            flag=True,
        ),
    )
    image_missing: bool = field(
        default=False,
        metadata=_meta(
            _bool,
            "every new task fails to pull its image (TaskFailedToStart, CannotPullContainerError)",
            flag=True,
        ),
    )
    spot_interruption_seconds: float | None = field(
        default=None,
        metadata=_meta(
            _optional(_non_negative), "stop tasks RUNNING this long as a Spot interruption (default: never)"
        ),
    )
    fault_operations: list[str] | None = field(
        default=None,
        metadata=_meta(
            _optional(_operations), "comma-separated operations random faults apply to (default: all)"
        ),
    )
    deny_actions: list[str] = field(
        default_factory=list,
        metadata=_meta(
            _actions,
            "comma-separated IAM actions the caller lacks (AccessDeniedException): "
            + ", ".join(DENIABLE_ACTIONS),
        ),
    )
    seed: int | None = field(default=None, metadata=_meta(_optional(int), "seed for every random decision"))
    timing: str = field(
        default="instant",
        metadata=_meta(
            _timing,
            "timing profile, a preset of provisioning_seconds, deprovisioning_seconds and timing_jitter "
            "(given alongside, those win): instant (PROVISIONING, PENDING, RUNNING, DEPROVISIONING, "
            "STOPPED; 0.2 s up, 0.05 s down) or fargate (every ECS state: PROVISIONING, PENDING, "
            "ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED; 3 s up, 2 s down, "
            "jitter 0.5)",
        ),
    )
    provisioning_seconds: float = field(
        default=0.2,
        metadata=_meta(
            _non_negative,
            "time from RunTask's answer until the containers start, over the profile's states up "
            "(instant: all of it PENDING)",
        ),
    )
    deprovisioning_seconds: float = field(
        default=0.05,
        metadata=_meta(
            _non_negative,
            "time from the containers having stopped until STOPPED, over the profile's states down "
            "(instant: all of it DEPROVISIONING)",
        ),
    )
    timing_jitter: float = field(
        default=0.0,
        metadata=_meta(
            _rate, "each lifecycle step lasts its time times a uniform factor in [1-this, 1+this]"
        ),
    )
    stop_timeout_seconds: float = field(
        default=5.0, metadata=_meta(_non_negative, "SIGTERM to SIGKILL delay for StopTask")
    )
    pretend_seconds: float | None = field(
        default=None,
        metadata=_meta(_optional(_non_negative), "run no process: tasks stay RUNNING this long, then exit"),
    )
    pretend_exit_code: int = field(default=0, metadata=_meta(int, "exit code of pretend tasks"))
    container_runner: str = field(
        default="process",
        metadata=_meta(
            _container_runner,
            "how task containers run: process (the command, on this host) or podman (the task "
            "definition's image, its entrypoint and volumes, host network)",
        ),
    )
    log_dir: str | None = field(
        default=None, metadata=_meta(_optional(str), "directory for <task_id>.log files (default: temp dir)")
    )
    default_region: str = field(
        default="us-east-1", metadata=_meta(str, "region when the request carries no SigV4 scope")
    )
    events_queue_url: str | None = field(
        default=None,
        metadata=_meta(
            _optional(str),
            "SQS queue URL that gets an 'ECS Task State Change' event per task change, as an EventBridge "
            "rule targeting it would deliver them (default: none, nothing is published)",
        ),
    )
    events_endpoint_url: str | None = field(
        default=None,
        metadata=_meta(
            _optional(str),
            "SQS endpoint URL, e.g. a moto server (default: AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, "
            "else AWS in the queue's Region)",
        ),
    )
    events_clusters: list[str] | None = field(
        default=None,
        metadata=_meta(
            _optional(_operations),
            "comma-separated cluster names or ARNs whose events are published, like a rule's "
            "detail.clusterArn filter (default: every cluster)",
        ),
    )
    events_duplicate_rate: float = field(
        default=0.0, metadata=_meta(_rate, "share of events delivered twice (same id, same body)")
    )
    events_drop_rate: float = field(default=0.0, metadata=_meta(_rate, "share of events never delivered"))
    events_max_delay_seconds: float = field(
        default=0.0,
        metadata=_meta(
            _non_negative, "each event waits a random 0..this many seconds before delivery (reorders them)"
        ),
    )

    def update(self, values: Mapping[str, Any]) -> list[str]:
        """Apply knob values (JSON or CLI strings) all-or-nothing; return the names that changed."""
        specs = {spec.name: spec for spec in dataclasses.fields(self)}
        parsed: dict[str, Any] = {}
        if "timing" in values:  # the profile's preset first: knobs given alongside it win
            try:
                parsed.update(PROFILES[_timing(values["timing"])].preset())
            except ValueError as exc:
                raise KnobError(f"bad value for timing: {exc}") from exc
        for name, raw in values.items():
            spec = specs.get(name)
            if spec is None:
                raise KnobError(f"unknown knob {name!r}")
            try:
                parsed[name] = spec.metadata["parse"](raw)
            except (TypeError, ValueError) as exc:
                raise KnobError(f"bad value for {name}: {exc}") from exc
        changed = [name for name, value in parsed.items() if getattr(self, name) != value]
        for name, value in parsed.items():
            setattr(self, name, value)
        return changed

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def knob_specs() -> list[dataclasses.Field[Any]]:
    """The knob fields, for building CLI flags."""
    return list(dataclasses.fields(Knobs))
