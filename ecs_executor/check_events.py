"""``check`` rows for events mode: the SQS queue, its policy, the EventBridge rule, and our SQS rights.

Each row names the fix. Read-only except one probe each for receiving and deleting: a ReceiveMessage
with a visibility timeout of 0 (a message it happens to get is visible again at once; its receive count
grows by one) and a DeleteMessage with a receipt handle that cannot exist (SQS answers
ReceiptHandleIsInvalid when the right to delete is there, AccessDenied when it is not).
"""

from __future__ import annotations

import json
from typing import Any

from ecs_executor.aws import describe_error, error_code
from ecs_executor.check_probe import CheckResult, Probe
from ecs_executor.config_values import is_queue_url
from ecs_executor.ecs_events import DETAIL_TYPE, SOURCE

EVENTS_PRINCIPAL = "events.amazonaws.com"
_DENIED = ("AccessDenied", "NotAuthorized", "UnauthorizedOperation")
_DOCS = "docs/event-tracking.md"


def check_events(p: Probe) -> list[CheckResult]:
    s = p.settings
    if s.effective_tracking_mode != "events":
        return [
            CheckResult(
                "tracking",
                True,
                f"polling: DescribeTasks over every tracked task each {s.poll_interval:g} s "
                f"(events mode: set {p.opt('events_queue')}, see {_DOCS})",
            )
        ]
    queue = s.events_queue or ""
    sqs = p.clients.client("sqs")
    try:
        url = queue if is_queue_url(queue) else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"])[
            "Attributes"
        ]
    except Exception as exc:
        return [
            CheckResult(
                "events queue",
                False,
                f"cannot read SQS queue {queue!r}: {describe_error(exc)}",
                f"Create the queue in {s.region_name} (the template in deploy/ does), or fix "
                f"{p.opt('events_queue')}; the scheduler needs sqs:GetQueueUrl and "
                "sqs:GetQueueAttributes on it.",
            )
        ]
    arn = str(attributes.get("QueueArn", ""))
    rows = [
        CheckResult(
            "events queue",
            True,
            f"{url} ({s.events_receivers} receivers, reconcile every {s.reconcile_interval:g} s)",
        )
    ]
    senders = _policy_senders(attributes.get("Policy"), arn)
    rows.append(_policy_row(senders, arn))
    rows.append(_rule_row(p, arn, senders))
    rows.extend(_rights_rows(sqs, url))
    return rows


def _policy_senders(policy: Any, queue_arn: str) -> set[str] | None:
    """Rule ARNs the queue policy lets EventBridge send for ({"*"}: any rule); None: EventBridge may not."""
    try:
        statements = json.loads(policy or "{}").get("Statement") or []
    except (ValueError, AttributeError):
        return None
    senders: set[str] = set()
    allowed = False
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if not (_mentions(st.get("Principal"), EVENTS_PRINCIPAL) and _allows_send(st.get("Action"))):
            continue
        if not any(r in ("*", queue_arn) for r in _as_list(st.get("Resource", "*"))):
            continue
        allowed = True
        conditions = st.get("Condition") or {}
        sources = [
            value
            for operator in conditions.values()
            if isinstance(operator, dict)
            for key, value in operator.items()
            if key.lower() == "aws:sourcearn"
        ]
        senders |= {arn for value in sources for arn in _as_list(value)} if sources else {"*"}
    return senders if allowed else None


def _mentions(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and (
        principal.get("AWS") == "*" or service in _as_list(principal.get("Service"))
    )


def _allows_send(action: Any) -> bool:
    return any(a in ("*", "sqs:*", "sqs:SendMessage") for a in _as_list(action))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_row(senders: set[str] | None, arn: str) -> CheckResult:
    if senders is None:
        return CheckResult(
            "events queue policy",
            False,
            f"the policy of {arn} does not let EventBridge ({EVENTS_PRINCIPAL}) send messages",
            f"Add a statement: Effect Allow, Principal {{Service: {EVENTS_PRINCIPAL}}}, Action "
            f"sqs:SendMessage, Resource {arn}, Condition ArnEquals aws:SourceArn = the rule's ARN ({_DOCS}).",
        )
    which = "any rule" if "*" in senders else ", ".join(sorted(senders))
    return CheckResult("events queue policy", True, f"EventBridge may send from {which}")


def _rule_row(p: Probe, queue_arn: str, senders: set[str] | None) -> CheckResult:
    events = p.clients.client("events")
    cluster = p.cluster()
    cluster_arn = str((cluster or {}).get("clusterArn") or p.settings.cluster)
    fix = (
        f'Create an EventBridge rule on the default bus with the pattern {{"source": ["{SOURCE}"], '
        f'"detail-type": ["{DETAIL_TYPE}"], "detail": {{"clusterArn": ["{cluster_arn}"]}}}} and '
        f"the queue {queue_arn} as its target ({_DOCS}). The check needs events:ListRuleNamesByTarget and "
        "events:DescribeRule."
    )
    try:
        names = events.list_rule_names_by_target(TargetArn=queue_arn).get("RuleNames") or []
        rules = [events.describe_rule(Name=name) for name in names]
    except Exception as exc:
        return CheckResult(
            "events rule", False, f"cannot list the rules targeting the queue: {describe_error(exc)}", fix
        )
    problems = []
    for rule in rules:
        problem = _rule_problem(rule, cluster_arn, senders)
        if problem is None:
            return CheckResult(
                "events rule", True, f"{rule.get('Name')} sends {cluster_arn}'s task state changes"
            )
        problems.append(f"{rule.get('Name')}: {problem}")
    detail = "; ".join(problems) if problems else f"no EventBridge rule targets {queue_arn}"
    return CheckResult("events rule", False, detail, fix)


def _rule_problem(rule: dict[str, Any], cluster_arn: str, senders: set[str] | None) -> str | None:
    if rule.get("State") != "ENABLED":
        return f"the rule is {rule.get('State')}"
    try:
        pattern = json.loads(rule.get("EventPattern") or "{}")
    except ValueError:
        return "its event pattern is not JSON"
    if SOURCE not in _as_list(pattern.get("source")):
        return f"its pattern does not match source {SOURCE!r}"
    if DETAIL_TYPE not in _as_list(pattern.get("detail-type")):
        return f"its pattern does not match detail-type {DETAIL_TYPE!r}"
    clusters = (pattern.get("detail") or {}).get("clusterArn")
    if clusters is not None and cluster_arn not in _as_list(clusters):
        return f"its pattern's clusterArn {clusters} does not include {cluster_arn}"
    if senders is not None and "*" not in senders and rule.get("Arn") not in senders:
        return "the queue policy does not let this rule send (aws:SourceArn)"
    return None


def _rights_rows(sqs: Any, url: str) -> list[CheckResult]:
    rows = []
    probes = (
        (
            "sqs:ReceiveMessage",
            lambda: sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=0
            ),
        ),
        ("sqs:DeleteMessage", lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="ecs-executor-check")),
    )
    for action, probe in probes:
        try:
            probe()
        except Exception as exc:
            code = error_code(exc)[0]
            if not code or any(word in code for word in _DENIED):
                rows.append(
                    CheckResult(
                        "events permissions",
                        False,
                        f"{action} on {url} failed: {describe_error(exc)}",
                        f"Allow {action} on the queue in the scheduler's IAM policy ({_DOCS}).",
                    )
                )
                continue
        rows.append(CheckResult("events permissions", True, f"{action} allowed"))
    return rows
