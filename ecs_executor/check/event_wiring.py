"""``check`` rows for events mode: the SQS queue, its policy, the EventBridge rule, and our SQS rights.

Each row names the fix. Read-only except one probe each for receiving and deleting: a ReceiveMessage
with a visibility timeout of 0 (a message it happens to get is visible again at once; its receive count
grows by one) and a DeleteMessage with a receipt handle that cannot exist (SQS answers
ReceiptHandleIsInvalid when the right to delete is there, AccessDenied when it is not; any other answer,
such as QueueDoesNotExist, proves nothing and fails the row). The queue policy's conditions are matched
as IAM matches them: ``ArnLike``/``ArnEquals`` part by part with ``*`` and ``?``, ``StringLike`` as a
whole, ``StringEquals`` exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ecs_executor.aws.clients import describe_error, error_code
from ecs_executor.check.rows import CheckResult, Probe
from ecs_executor.config.values import is_queue_url
from ecs_executor.core.state_change import DETAIL_TYPE, SOURCE, rule_pattern
from ecs_executor.request.run_task import started_by

EVENTS_PRINCIPAL = "events.amazonaws.com"
_DOCS = "docs/event-tracking.md"
#: The only answer to a DeleteMessage with an invented receipt handle that proves the right to delete.
INVALID_HANDLE = "ReceiptHandleIsInvalid"
#: (condition operator, pattern) pairs; ("*", "*") stands for a statement without an aws:SourceArn condition.
Senders = list[tuple[str, str]]
ANY_SENDER = ("*", "*")


def iam_glob(pattern: str, value: str) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one character, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.S) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """IAM's ArnLike (and ArnEquals): each of the six colon-separated parts matched on its own."""
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(actual) == 6 and all(
        iam_glob(w, a) for w, a in zip(wanted, actual, strict=True)
    )


def condition_matches(operator: str, pattern: str, value: str) -> bool:
    """One value of an IAM condition against the request's value (positive operators only)."""
    base = operator.split(":")[-1]
    base = base[: -len("IfExists")] if base.endswith("IfExists") else base
    if base in ("ArnLike", "ArnEquals"):
        return arn_like(pattern, value)
    if base == "StringLike":
        return iam_glob(pattern, value)
    if base == "StringEquals":
        return pattern == value
    if base == "StringEqualsIgnoreCase":
        return pattern.lower() == value.lower()
    return False


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


def _policy_senders(policy: Any, queue_arn: str) -> Senders | None:
    """The aws:SourceArn conditions under which the policy lets EventBridge send ([ANY_SENDER]: any rule);
    None: EventBridge may not send at all."""
    try:
        statements = json.loads(policy or "{}").get("Statement") or []
    except (ValueError, AttributeError):
        return None
    senders: Senders = []
    allowed = False
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if not (_mentions(st.get("Principal"), EVENTS_PRINCIPAL) and _allows_send(st.get("Action"))):
            continue
        if not any(
            r == "*" or (isinstance(r, str) and arn_like(r, queue_arn))
            for r in _as_list(st.get("Resource", "*"))
        ):
            continue
        allowed = True
        conditions = st.get("Condition") or {}
        sources = [
            (operator, str(pattern))
            for operator, keys in conditions.items()
            if isinstance(keys, dict)
            for key, value in keys.items()
            if key.lower() == "aws:sourcearn"
            for pattern in _as_list(value)
        ]
        senders += sources or [ANY_SENDER]
    return senders if allowed else None


def _admits(senders: Senders, rule_arn: str) -> bool:
    return any(
        (op, pattern) == ANY_SENDER or condition_matches(op, pattern, rule_arn) for op, pattern in senders
    )


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


def _policy_row(senders: Senders | None, arn: str) -> CheckResult:
    if senders is None:
        return CheckResult(
            "events queue policy",
            False,
            f"the policy of {arn} does not let EventBridge ({EVENTS_PRINCIPAL}) send messages",
            f"Add a statement: Effect Allow, Principal {{Service: {EVENTS_PRINCIPAL}}}, Action "
            f"sqs:SendMessage, Resource {arn}, Condition ArnEquals aws:SourceArn = the rule's ARN ({_DOCS}).",
        )
    which = "any rule" if ANY_SENDER in senders else ", ".join(sorted({p for _, p in senders}))
    return CheckResult("events queue policy", True, f"EventBridge may send from {which}")


def _rule_row(p: Probe, queue_arn: str, senders: Senders | None) -> CheckResult:
    events = p.clients.client("events")
    cluster = p.cluster()
    cluster_arn = str((cluster or {}).get("clusterArn") or p.settings.cluster)
    ours = started_by(p.team_name)
    fix = (
        f"Create an EventBridge rule on the default bus with the pattern "
        f"{json.dumps(rule_pattern([cluster_arn]))} and the queue {queue_arn} as its target ({_DOCS}). "
        "The check needs events:ListRuleNamesByTarget and events:DescribeRule."
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
        problem = _rule_problem(rule, cluster_arn, senders, ours)
        if problem is None:
            return CheckResult(
                "events rule", True, f"{rule.get('Name')} sends {cluster_arn}'s task state changes"
            )
        problems.append(f"{rule.get('Name')}: {problem}")
    detail = "; ".join(problems) if problems else f"no EventBridge rule targets {queue_arn}"
    return CheckResult("events rule", False, detail, fix)


def _rule_problem(rule: dict[str, Any], cluster_arn: str, senders: Senders | None, ours: str) -> str | None:
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
    detail = pattern.get("detail") or {}
    clusters = detail.get("clusterArn")
    if clusters is not None and cluster_arn not in _as_list(clusters):
        return f"its pattern's clusterArn {clusters} does not include {cluster_arn}"
    filters = detail.get("startedBy")
    if filters is not None and not any(_started_by_matches(f, ours) for f in _as_list(filters)):
        return (
            f"its pattern's startedBy {json.dumps(filters)} does not admit this executor's tasks ({ours!r})"
        )
    if senders is not None and not _admits(senders, str(rule.get("Arn") or "")):
        return "the queue policy does not let this rule send (aws:SourceArn)"
    return None


def _started_by_matches(event_filter: Any, value: str) -> bool:
    """One entry of an EventBridge pattern's list: an exact string, or {"prefix": ...}/{"wildcard": ...}."""
    if isinstance(event_filter, str):
        return event_filter == value
    if isinstance(event_filter, dict) and isinstance(event_filter.get("prefix"), str):
        return value.startswith(event_filter["prefix"])
    if isinstance(event_filter, dict) and isinstance(event_filter.get("wildcard"), str):
        regex = ".*".join(re.escape(part) for part in event_filter["wildcard"].split("*"))
        return re.fullmatch(regex, value, flags=re.S) is not None
    return False


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
            code = error_code(exc)[0] or ""
            proven = action == "sqs:DeleteMessage" and code.endswith(INVALID_HANDLE)
            if not proven:
                denied = any(word in code for word in ("AccessDenied", "NotAuthorized", "Unauthorized"))
                fix = (
                    f"Allow {action} on the queue in the scheduler's IAM policy ({_DOCS})."
                    if denied or not code
                    else f"This answer does not show whether {action} is allowed: fix its cause, check again."
                )
                rows.append(
                    CheckResult(
                        "events permissions", False, f"{action} on {url} failed: {describe_error(exc)}", fix
                    )
                )
                continue
        rows.append(CheckResult("events permissions", True, f"{action} allowed"))
    return rows
