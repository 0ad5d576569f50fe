"""``check`` rows for workload encryption: the KMS key ``workload_kms_key`` names, and what may use it.

With the option set, the scheduler seals every workload with a data key that KMS makes for one fixed
encryption context, and the worker opens it with kms:Decrypt as the task role (docs/security.md). Three
rows: the key (DescribeKey: exists, Enabled, a symmetric encryption key), the scheduler's data keys
(GenerateDataKey with DryRun: KMS answers DryRunOperationException when the call would succeed, and makes
no key), and the task role's Decrypt, which only that role can try, so the row says what it cannot verify.
Without the option, one row says the workload travels in clear.
"""

from __future__ import annotations

from typing import Any

from ecs_executor.aws.clients import describe_error, error_code
from ecs_executor.check.rows import ACCESS_DENIED_CODES, CheckResult, Probe, skip, warn
from ecs_executor.core.data_key_policy import KEY_SPEC, KEY_USAGE
from ecs_executor.core.envelope import KMS_CONTEXT, PURPOSE, PURPOSE_KEY

KEY_STATE = "Enabled"
CONDITION = f"kms:EncryptionContext:{PURPOSE_KEY} = {PURPOSE}"
DOCS = "docs/security.md"
NOT_TRIED = skip("workload data keys", "not tried: the workload key is not usable (row above)")


def key_region(key: str, default: str) -> str:
    """The Region a key or alias ARN names; ids and alias names are looked up in ``default``."""
    parts = key.split(":")
    return parts[3] if key.startswith("arn:") and len(parts) > 3 and parts[3] else default


def check_workload_key(p: Probe) -> list[CheckResult]:
    key = p.settings.workload_kms_key
    if not key:
        return [
            skip(
                "workload encryption",
                f"off ({p.opt('workload_kms_key')} unset): each task's workload, its Airflow token "
                "included, is in clear in the RunTask command, readable with ecs:DescribeTasks, in "
                f"CloudTrail's RunTask events and in task state change events; see {DOCS}",
            )
        ]
    region = p.settings.region_name
    if key_region(key, region) != region:  # the engine and the tasks ask KMS in region_name
        detail = (
            f"{key} is in {key_region(key, region)}, but the scheduler and its tasks ask KMS in "
            f"{region} ({p.opt('region_name')})"
        )
        fix = f"Use a key in {region} (a multi-Region key's replica there, for one in another Region)."
        return [CheckResult("workload key", False, detail, fix), NOT_TRIED, _task_role_row(p, key)]
    kms = p.clients.client("kms", region)
    key_row, usable = _key_row(p, kms, key)
    data_keys = _data_key_row(p, kms, key) if usable else NOT_TRIED
    return [key_row, data_keys, _task_role_row(p, key)]


def _key_fix(p: Probe) -> str:
    return (
        f"Set {p.opt('workload_kms_key')} to an enabled symmetric encryption key in its Region (key id, "
        "alias/..., or key or alias ARN), e.g. the stack's WorkloadKmsKey output (parameter "
        f"WorkloadKmsKey=create); or unset it to send workloads in clear ({DOCS})."
    )


def _key_row(p: Probe, kms: Any, key: str) -> tuple[CheckResult, bool]:
    """The key row, and whether asking KMS for data keys is worth a row (denied DescribeKey still is)."""
    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except Exception as exc:
        detail = f"DescribeKey {key!r}: {describe_error(exc)}"
        if error_code(exc)[0] in ACCESS_DENIED_CODES:  # sealing needs GenerateDataKey only: the next row
            fix = (
                "Grant kms:DescribeKey on the key to the scheduler's identity (the stack's "
                "SchedulerWorkloadKeyPolicy): start-up and this check use it to see that the key is usable."
            )
            return warn("workload key", f"{detail}; whether the key is usable is not known", fix), True
        return CheckResult("workload key", False, detail, _key_fix(p)), False
    arn = meta.get("Arn") or key
    state, usage, spec = meta.get("KeyState"), meta.get("KeyUsage"), meta.get("KeySpec")
    if state != KEY_STATE:
        fixes = {
            "Disabled": f"Enable it (aws kms enable-key --key-id {arn}), or name another key.",
            "PendingDeletion": f"Cancel its deletion (aws kms cancel-key-deletion --key-id {arn}) and "
            "enable it, or name another key.",
        }
        detail = f"{arn} is {state}, not {KEY_STATE}: no workload can be sealed or opened with it"
        return CheckResult("workload key", False, detail, fixes.get(str(state), _key_fix(p))), False
    if (usage, spec) != (KEY_USAGE, KEY_SPEC):
        detail = f"{arn} is a {spec} key for {usage}; data keys need a {KEY_SPEC} key for {KEY_USAGE}"
        return CheckResult("workload key", False, detail, _key_fix(p)), False
    return CheckResult("workload key", True, f"{arn} is {state}, {spec} for {usage}"), True


def _data_key_row(p: Probe, kms: Any, key: str) -> CheckResult:
    name = "workload data keys"
    allowed = f"the scheduler may call GenerateDataKey for {CONDITION}"
    try:
        answer = kms.generate_data_key(
            KeyId=key, KeySpec="AES_256", EncryptionContext=dict(KMS_CONTEXT), DryRun=True
        )
    except Exception as exc:
        code = error_code(exc)[0]
        if code == "DryRunOperationException":  # KMS's answer to an allowed DryRun
            return CheckResult(name, True, f"{allowed} (DryRun)")
        fix = _key_fix(p)
        if code in ACCESS_DENIED_CODES:
            fix = (
                "Allow the scheduler's identity kms:GenerateDataKey on the key with the condition "
                f"{CONDITION} (the stack's SchedulerWorkloadKeyPolicy), and check that the key policy "
                "lets IAM policies grant it (AWS's account statement) or names that identity."
            )
        return CheckResult(name, False, f"GenerateDataKey (DryRun): {describe_error(exc)}", fix)
    # An endpoint that ignores DryRun made a real data key: it is dropped unread.
    answer.clear()
    return CheckResult(name, True, f"{allowed} (this endpoint ignored DryRun; its data key was dropped)")


def _task_role_row(p: Probe, key: str) -> CheckResult:
    """The worker decrypts as the task role, another identity: nothing the scheduler may call shows whether
    it may. A definition without a task role gets a warning: on Fargate its container has no credentials."""
    try:
        role = p.task_definition().get("taskRoleArn")
    except Exception:  # the task definition row says why
        role = "the task definition's task role"
    if not role:
        return warn(
            "workload decrypt",
            "the task definition names no task role: the worker has no AWS identity to call kms:Decrypt "
            "with (none at all on Fargate)",
            f"Give the task definition a task role allowed kms:Decrypt on {key} with the condition "
            f"{CONDITION} (the stack's TaskRole has it).",
        )
    return skip(
        "workload decrypt",
        f"not verifiable from the scheduler: whether {role} may call kms:Decrypt on {key} for {CONDITION} "
        "(its IAM policies and the key policy) shows only when a task opens its workload; a refusal ends "
        "that task with exit code 82. The execution role needs no KMS access",
    )
