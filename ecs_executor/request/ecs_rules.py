"""The Amazon ECS API rules we depend on, in one pure module.

It is shared by the executor's request building and by the local ECS endpoint, which refuses what real
ECS refuses. Keeping one copy means a rule learnt from AWS's documentation (or from a failed launch)
changes the product and its test double together.

No I/O, no Airflow import. Each ``*_problem(s)`` function returns ``None`` when the input is fine, or a
one-line message worded like ECS's own error, so callers can raise it or show it unchanged.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

#: RunTask ``overrides``, as compact JSON, may hold at most this many characters.
MAX_OVERRIDES_CHARS = 8192
#: Tags per resource, and the length of a tag key and value (Unicode characters).
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
#: Airflow's token-signing key in every form Airflow reads it from the environment (the value, ``_CMD``,
#: ``_SECRET``; the symmetric secret and the asymmetric private key). Only token issuers and validators
#: (scheduler, API server) need it; a worker authenticates with its workload's token alone.
SIGNING_KEY_VARIABLE = re.compile(r"^AIRFLOW__API_AUTH__JWT_(SECRET|PRIVATE_KEY_PATH)(_CMD|_SECRET)?$")


def signing_key_variables(container: Mapping[str, Any]) -> list[str]:
    """Names of the signing-key variables a container definition (or override) sets, sorted."""
    entries = list(container.get("environment") or []) + list(container.get("secrets") or [])
    names = {str(e.get("name", "")) for e in entries if isinstance(e, Mapping)}
    return sorted(n for n in names if SIGNING_KEY_VARIABLE.match(n.upper()))


#: RunTask ``clientToken`` and ``startedBy`` lengths.
MAX_CLIENT_TOKEN = 64
MAX_STARTED_BY = 128
#: Task ARNs per DescribeTasks call, tasks per RunTask call.
MAX_DESCRIBE_TASKS = 100
MAX_RUN_COUNT = 10
#: Clusters per DescribeClusters call; ListTasks page size.
MAX_DESCRIBE_CLUSTERS = 100
MAX_LIST_RESULTS = 100
#: StopTask ``reason`` length.
MAX_STOP_REASON = 255
#: awsvpcConfiguration limits.
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
#: A capacity provider strategy item's ``weight`` and ``base``.
MAX_CAPACITY_WEIGHT = 1000
MAX_CAPACITY_BASE = 100000
#: ECS's per-account API buckets (burst, refill per second): "cluster resource modify" (RunTask,
#: StartTask, StopTask), Fargate's own RunTask refill, and "cluster resource read" (DescribeTasks,
#: ListTasks).
RUN_TASK_BURST = 100
EC2_RUN_TASK_RATE = 40.0
FARGATE_RUN_TASK_RATE = 20.0
DESCRIBE_BURST = 100
DESCRIBE_RATE = 20.0
#: "Task definition modify" (RegisterTaskDefinition, DeregisterTaskDefinition), "task definition read"
#: (DescribeTaskDefinition, ListTaskDefinitions, ListTaskDefinitionFamilies), "tag modify" (TagResource,
#: UntagResource) and "tag read" (ListTagsForResource), per account and Region.
TASK_DEFINITION_MODIFY_BURST = 20
TASK_DEFINITION_MODIFY_RATE = 1.0
TASK_DEFINITION_READ_BURST = 50
TASK_DEFINITION_READ_RATE = 20.0
TASK_DEFINITION_DELETE_BURST = 5  # DeleteTaskDefinitions
TASK_DEFINITION_DELETE_RATE = 1.0
TAG_MODIFY_BURST = 20
TAG_MODIFY_RATE = 10.0
TAG_READ_BURST = 50
TAG_READ_RATE = 20.0
#: A task definition family: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and
#: hyphens are allowed".
MAX_FAMILY = 255
#: The capacity providers that put a task on Fargate.
FARGATE_CAPACITY_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})

#: What RunTask falls back to when neither a launch type nor a strategy is given and the cluster has
#: no default capacity provider strategy.
DEFAULT_LAUNCH_TYPE = "EC2"

BOTH_LAUNCH_TARGETS = (
    "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
)

_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


# botocore's service model ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _service_model() -> Any:
    """ECS's service model, loaded once: it is the same JSON botocore clients validate against."""
    import botocore.session

    return botocore.session.get_session().get_service_model("ecs")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    from botocore.validate import ParamValidator

    return ParamValidator()


def request_problems(operation: str, params: Mapping[str, Any]) -> str | None:
    """Check a request against the operation's input shape: types, required members, unknown members."""
    model = _service_model()
    if operation not in model.operation_names:
        return f"Unknown operation {operation}."
    shape = model.operation_model(operation).input_shape
    if shape is None:
        return None
    report = _validator().validate(dict(params), shape)
    if not report.has_errors():
        return None
    return "; ".join(line.strip() for line in report.generate_report().splitlines() if line.strip())


def input_members(operation: str) -> frozenset[str]:
    """The request members an operation's input shape has (e.g. what RegisterTaskDefinition accepts)."""
    shape = _service_model().operation_model(operation).input_shape
    return frozenset(shape.members) if shape is not None else frozenset()


def model_enum(shape: str) -> tuple[str, ...]:
    """The values an enum shape of the model allows (botocore's validator does not check enums)."""
    return tuple(_service_model().shape_for(shape).enum)


def is_type_problem(message: str) -> bool:
    """True for a request_problems message about a wrongly typed value (ECS: SerializationException)."""
    return message.startswith("Invalid type for parameter")


# Tags --------------------------------------------------------------------------------------------


def tag_char_allowed(char: str) -> bool:
    """ECS tags allow Unicode letters, separators (spaces) and numbers, plus ``_ . : / = + - @``."""
    return unicodedata.category(char)[0] in "LZN" or char in _TAG_PUNCTUATION


def sanitize_tag_text(text: str, limit: int) -> str:
    """Make ``text`` a valid tag key or value: disallowed characters become ``_``, then cut to ``limit``."""
    return "".join(char if tag_char_allowed(char) else "_" for char in text)[:limit]


def _tag_text_ok(text: str) -> bool:
    return all(tag_char_allowed(char) for char in text)


def tag_problems(tags: Any) -> str | None:
    """Why ECS would refuse this ``tags`` list (count, lengths, characters, the reserved ``aws:`` prefix)."""
    if tags is None:
        return None
    if not isinstance(tags, list):
        return "Tags must be a list of key/value pairs."
    if len(tags) > MAX_TAGS:
        return f"Tags cannot have more than {MAX_TAGS} elements."
    for tag in tags:
        if not isinstance(tag, Mapping):
            return "Each tag must be an object with a key and a value."
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
            return f"Tag key {key!r} is invalid: it must be 1-{MAX_TAG_KEY} characters."
        if not _tag_text_ok(key):
            return (
                f"Tag key {key!r} is invalid: only letters, numbers, spaces and _ . : / = + - @ are allowed."
            )
        if key.lower().startswith("aws:"):
            return f"Tag key {key!r} is invalid: the 'aws:' prefix is reserved for AWS use."
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            return f"Tag value for key {key!r} is invalid: it must be at most {MAX_TAG_VALUE} characters."
        if not _tag_text_ok(value):
            return (
                f"Tag value for key {key!r} is invalid: only letters, numbers, spaces and "
                "_ . : / = + - @ are allowed."
            )
    return None


# Launch target -----------------------------------------------------------------------------------


def launch_target_problems(params: Mapping[str, Any]) -> str | None:
    """RunTask rules on launchType, capacityProviderStrategy and platformVersion visible in the request."""
    launch_type = params.get("launchType")
    if launch_type and params.get("capacityProviderStrategy"):
        return BOTH_LAUNCH_TARGETS
    if params.get("platformVersion") and launch_type in ("EC2", "EXTERNAL"):
        return f"The platform version must be null when specifying an {launch_type} launch type."
    return None


def resolve_launch_target(
    params: Mapping[str, Any], default_strategy: Sequence[Mapping[str, Any]] | None = None
) -> tuple[str, str | None]:
    """(launch type, capacity provider) RunTask uses: the request's, else the cluster's default, else EC2.

    With a strategy the first provider stands for the task (we never split one call across providers).
    """
    launch_type = params.get("launchType")
    if launch_type:
        return str(launch_type), None
    strategy = params.get("capacityProviderStrategy") or default_strategy or []
    if not strategy:
        return DEFAULT_LAUNCH_TYPE, None
    provider = str(strategy[0].get("capacityProvider", ""))
    return ("FARGATE" if provider in FARGATE_CAPACITY_PROVIDERS else "EC2"), provider


# Task sizes --------------------------------------------------------------------------------------


def _in_units(value: str | int | None, scale: Mapping[str, int]) -> int | None:
    """``value`` as a whole number of the base unit; a known unit suffix is scaled, anything else is None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if match is None:
        return None
    factor = scale.get(match.group(2).lower())
    if factor is None:
        return None
    amount = float(match.group(1)) * factor
    return int(amount) if amount.is_integer() else None


def cpu_units(value: str | int | None) -> int | None:
    """Task cpu as CPU units: ``1024``, ``"1024"``, ``"1 vCPU"`` and ``".25 vcpu"`` are accepted."""
    return _in_units(value, {"": 1, "vcpu": 1024})


def memory_mib(value: str | int | None) -> int | None:
    """Task or container memory as MiB: ``2048``, ``"2048"``, ``"2 GB"`` and ``"0.5GB"`` are accepted."""
    return _in_units(value, {"": 1, "mib": 1, "mb": 1, "gb": 1024, "gib": 1024})


def _gb_steps(low: int, high: int, step: int) -> frozenset[int]:
    return frozenset(range(low * 1024, high * 1024 + 1, step * 1024))


#: Fargate task cpu (units) -> allowed task memory (MiB), from AWS's "Task CPU and memory" table.
FARGATE_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: _gb_steps(1, 4, 1),
    1024: _gb_steps(2, 8, 1),
    2048: _gb_steps(4, 16, 1),
    4096: _gb_steps(8, 30, 1),
    8192: _gb_steps(16, 60, 4),
    16384: _gb_steps(32, 120, 8),
}


def fargate_size_problem(cpu: str | int | None, memory: str | int | None) -> str | None:
    """Fargate runs only the task cpu/memory pairs in AWS's table; anything else fails registration."""
    units = cpu_units(cpu)
    if units not in FARGATE_SIZES:
        return "Invalid 'cpu' setting for task."
    mib = memory_mib(memory)
    if mib is None:
        return "Invalid 'memory' setting for task."
    if mib not in FARGATE_SIZES[units]:
        return "No Fargate configuration exists for given values."
    return None


def container_memory_problem(task_memory: str | int | None, container: Mapping[str, Any]) -> str | None:
    """A container may not ask for more memory (hard or soft limit) than its task has."""
    limit = memory_mib(task_memory)
    if limit is None:
        return None
    name = container.get("name")
    for setting in ("memory", "memoryReservation"):
        wanted = container.get(setting)
        if wanted is None:
            continue
        mib = memory_mib(wanted)
        if mib is not None and mib > limit:
            return f"The '{setting}' setting for container '{name}' is greater than for the task."
    return None


# Task settings RunTask or a derived task definition carries ---------------------------------


#: EC2/EXTERNAL task cpu: "between 128 CPU units (0.125 vCPUs) and 196608 CPU units (192 vCPUs)".
MIN_TASK_CPU = 128
MAX_TASK_CPU = 196608
#: Fargate task cpu that needs Linux platform version 1.4.0 or later (8 and 16 vCPU).
FARGATE_CPU_NEEDS_1_4 = frozenset({8192, 16384})
#: ``ephemeralStorage.sizeInGiB``: "minimum supported value is 21 GiB and the maximum ... 200 GiB".
MIN_EPHEMERAL_GIB = 21
MAX_EPHEMERAL_GIB = 200
#: ``runtimePlatform`` enums in ECS's service model.
CPU_ARCHITECTURES = ("X86_64", "ARM64")
OS_FAMILIES = (
    "LINUX",
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
)
#: A container image reference: up to 255 letters, digits and ``- _ : . / # @``.
MAX_IMAGE = 255
_IMAGE = re.compile(r"^[A-Za-z0-9_:./#@-]{1,255}$")


def image_problem(image: str) -> str | None:
    """ECS's rule for a container definition's ``image``."""
    if _IMAGE.match(image):
        return None
    return (
        f"an image is 1-{MAX_IMAGE} letters, digits and - _ : . / # @ "
        "(such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:3.1)"
    )


def fargate_sizes_text(cpu: int | None = None) -> str:
    """What Fargate accepts, for messages: every cpu value, or the memory range for one."""
    if cpu not in FARGATE_SIZES:
        return "Fargate task cpu is one of " + ", ".join(str(c) for c in FARGATE_SIZES)
    allowed = sorted(FARGATE_SIZES[cpu])
    steps = {b - a for a, b in itertools.pairwise(allowed)}
    if len(steps) == 1:
        low, high = allowed[0], allowed[-1]
        return f"with cpu {cpu} Fargate takes memory {low}-{high} MiB in steps of {steps.pop()}"
    return f"with cpu {cpu} Fargate takes memory " + ", ".join(str(m) for m in allowed) + " MiB"


def is_windows(os_family: str | None) -> bool:
    return bool(os_family) and str(os_family).startswith("WINDOWS")


def platform_before_1_4(version: str | None) -> bool:
    """A Fargate platform version older than 1.4.0 (``LATEST`` and unset are not)."""
    match = re.match(r"^(\d+)\.(\d+)", str(version or ""))
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) < (1, 4)


# Overrides and ARNs ------------------------------------------------------------------------------


def overrides_size(overrides: Any) -> int:
    """Characters in ``overrides`` as compact JSON, the figure ECS holds to MAX_OVERRIDES_CHARS."""
    return len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))


def cluster_of_task_arn(arn: str) -> str | None:
    """The cluster name in a new-format task ARN (``...:task/CLUSTER/ID``); None for old-format ARNs."""
    if not arn.startswith("arn:"):
        return None
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "ecs":
        return None
    path = parts[5].split("/")
    if len(path) == 3 and path[0] == "task" and path[1] and path[2]:
        return path[1]
    return None
