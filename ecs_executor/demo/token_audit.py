"""Is any workload token readable outside the scheduler and its task? Searched, not assumed (issue 25).

Shared by ``make demo ARGS=--encrypt`` and ``tests/e2e/test_sealed_workloads.py``. The tokens searched for
are the real ones, read back from each ECS task's command override: a sealed command is opened the way the
worker opens it (``kms:Decrypt`` of the wrapped data key at moto's KMS, then ``core.envelope``), a plain one
is the workload JSON itself. Nothing is made up, so a search that finds nothing means something.

Where it looks: the DescribeTasks answer of every ECS task the local endpoint holds (every status, every
field: overrides, containers, tags), every body the events queue accepted (``LocalSqs.record``), and every
file of the deployment's logs (the components, the endpoint, the task processes' output, Airflow's task
logs). A token counts as found when the whole token, or its payload or signature part alone, appears.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecs_executor.core.envelope import ENVELOPE_PREFIX, open_sealed, parse

if TYPE_CHECKING:
    from ecs_executor.demo.deployment import LocalDeployment

#: The alias of the key a local deployment creates in encrypted mode.
WORKLOAD_KEY_ALIAS = "alias/airflow-workloads"
#: A part of a token shorter than this is not searched alone (a JWT's header is the same for every token).
_MIN_PART = 20


def _client(service: str, url: str, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def create_workload_key(moto_url: str, region: str) -> str:
    """A symmetric KMS key at moto, with ``WORKLOAD_KEY_ALIAS``; returns its ARN."""
    kms = _client("kms", moto_url, region)
    key = kms.create_key(
        Description="ecs_executor local deployment: seals the Airflow workloads in RunTask commands",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
    )["KeyMetadata"]
    try:
        kms.create_alias(AliasName=WORKLOAD_KEY_ALIAS, TargetKeyId=key["KeyId"])
    except kms.exceptions.AlreadyExistsException:  # moto's state is per process: an earlier deployment's
        kms.update_alias(AliasName=WORKLOAD_KEY_ALIAS, TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def described_tasks(ecs_url: str, cluster: str, region: str) -> list[dict[str, Any]]:
    """Every ECS task of ``cluster`` (running and stopped), as DescribeTasks answers it."""
    ecs = _client("ecs", ecs_url, region)
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=desired):
            arns.extend(page["taskArns"])
    tasks: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        tasks.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100], include=["TAGS"])["tasks"])
    return tasks


def workload_token(command: list[str], kms: Any) -> tuple[str | None, bool]:
    """The token of the workload a command carries, and whether the command was sealed."""
    if not command:
        return None, False
    last = command[-1]
    sealed = last.startswith(ENVELOPE_PREFIX + ".")
    if sealed:
        if kms is None:
            raise ValueError("a sealed command, and no KMS endpoint to open it with")
        envelope = parse(last)
        plaintext = kms.decrypt(CiphertextBlob=envelope.wrapped, EncryptionContext=envelope.kms_context)
        last = open_sealed(envelope, plaintext["Plaintext"])
    try:
        token = json.loads(last)["token"]
    except (ValueError, KeyError, TypeError):
        return None, sealed
    return (token if isinstance(token, str) and token else None), sealed


def _parts(token: str) -> list[str]:
    return [token, *(part for part in token.split(".")[1:] if len(part) >= _MIN_PART)]


@dataclass
class TokenAudit:
    """What was searched and what was found; ``leaks`` lists (where, ECS task ARN of the token)."""

    tokens: dict[str, str] = field(default_factory=dict)
    sealed: set[str] = field(default_factory=set)
    searched: Counter[str] = field(default_factory=Counter)
    leaks: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        places = ", ".join(f"{count} {kind}" for kind, count in sorted(self.searched.items()))
        found = (
            "no workload token found"
            if not self.leaks
            else f"{len(self.leaks)} token sighting(s), first: {self.leaks[0][0]}"
        )
        return (
            f"{len(self.tokens)} workload tokens ({len(self.sealed)} from sealed commands) searched in "
            f"{places}: {found}"
        )


def audit_deployment(deployment: LocalDeployment) -> TokenAudit:
    """``audit`` of a local deployment: its endpoint, its moto, its events queue and all its logs."""
    from ecs_executor.demo.task_definitions import CLUSTER, REGION

    logs = [deployment.logs, deployment.home / "logs"]
    return audit(deployment.ecs_url, deployment.sqs_url, CLUSTER, REGION, deployment.event_bodies, logs)


def audit(
    ecs_url: str, kms_url: str, cluster: str, region: str, event_bodies: list[str], logs: list[Path]
) -> TokenAudit:
    """Search every place named in the module doc for every token the endpoint's tasks carried."""
    result = TokenAudit()
    kms = _client("kms", kms_url, region) if kms_url else None
    texts: dict[str, str] = {}
    for task in described_tasks(ecs_url, cluster, region):
        arn = task["taskArn"]
        texts[f"DescribeTasks {arn}"] = json.dumps(task, default=str)
        result.searched["DescribeTasks answers"] += 1
        for override in (task.get("overrides") or {}).get("containerOverrides") or []:
            token, sealed = workload_token(override.get("command") or [], kms)
            if token is not None:
                result.tokens[arn] = token
            if sealed:
                result.sealed.add(arn)
    for i, body in enumerate(list(event_bodies)):
        texts[f"event body #{i}"] = body
        result.searched["event bodies"] += 1
    for folder in logs:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            texts[f"log {path}"] = path.read_bytes().decode("utf-8", "replace")
            result.searched["log files"] += 1
    for arn, token in result.tokens.items():
        parts = _parts(token)
        result.leaks.extend((where, arn) for where, text in texts.items() if any(p in text for p in parts))
    return result
