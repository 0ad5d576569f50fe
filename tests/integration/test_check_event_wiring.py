"""``check`` in events mode against moto's SQS and EventBridge servers: each wiring fault, its row and fix."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from tests.conftest import REGION
from tests.integration.test_check import _check, _name, _register, aws, network, wide_terminal  # noqa: F401

PATTERN = {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]}


@pytest.fixture
def wiring(aws: dict[str, Any], network: dict[str, str], moto_url: str, configure: Any) -> dict[str, Any]:  # noqa: F811
    """A cluster, its task definition, a queue, a rule for the cluster targeting it, and the queue policy."""
    kwargs = {"endpoint_url": moto_url, "region_name": REGION}
    sqs, events = boto3.client("sqs", **kwargs), boto3.client("events", **kwargs)  # type: ignore[call-overload]
    cluster = _name()
    cluster_arn = aws["ecs"].create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    _register(aws, cluster)
    url = sqs.create_queue(QueueName=f"ev-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"rule-{cluster}"
    rule_arn = events.put_rule(
        Name=rule, EventPattern=json.dumps({**PATTERN, "detail": {"clusterArn": [cluster_arn]}})
    )["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])
    set_policy(sqs, url, queue_arn, rule_arn)
    configure(cluster, subnets=network["subnet"], security_groups=network["sg"], events_queue=url)
    yield {
        "sqs": sqs,
        "events": events,
        "url": url,
        "queue_arn": queue_arn,
        "rule": rule,
        "rule_arn": rule_arn,
        "cluster": cluster,
        "cluster_arn": cluster_arn,
    }
    events.remove_targets(Rule=rule, Ids=["queue"])
    events.delete_rule(Name=rule)
    sqs.delete_queue(QueueUrl=url)


def set_policy(
    sqs: Any,
    url: str,
    queue_arn: str,
    source_arn: str | None,
    principal: str = "events.amazonaws.com",
    operator: str = "ArnEquals",
) -> None:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
    }
    if source_arn:
        statement["Condition"] = {operator: {"aws:SourceArn": source_arn}}
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}
    )


def events_rows(text: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in text.splitlines():
        for name in ("events queue policy", "events queue", "events rule", "events permissions", "tracking"):
            if line.startswith(name + " "):
                status = line[len(name) :].split()[0]
                rows[name] = rows.get(name, "") + status[:1]
                break
    return rows


def test_wired_queue_passes(wiring: dict[str, Any]) -> None:
    code, text = _check()
    assert code == 0, text
    assert events_rows(text) == {
        "events queue": "P",
        "events queue policy": "P",
        "events rule": "P",
        "events permissions": "PP",  # receive and delete
    }, text
    assert wiring["rule"] in text


def test_polling_says_so_and_how_to_switch(aws: dict[str, Any], configure: Any) -> None:  # noqa: F811
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, fargate=False)
    configure(cluster)
    _, text = _check()
    assert events_rows(text) == {"tracking": "P"} and "events_queue" in text


def test_missing_queue_names_the_option(wiring: dict[str, Any], configure: Any) -> None:
    configure(wiring["cluster"], events_queue="no-such-queue")
    code, text = _check()
    assert code == 1 and events_rows(text) == {"events queue": "F"}, text
    assert "AIRFLOW__AWS_ECS_EXECUTOR__EVENTS_QUEUE" in text and "no-such-queue" in text


def test_queue_policy_without_eventbridge_fails(wiring: dict[str, Any]) -> None:
    set_policy(wiring["sqs"], wiring["url"], wiring["queue_arn"], None, principal="sns.amazonaws.com")
    code, text = _check()
    assert code == 1 and events_rows(text)["events queue policy"] == "F", text
    assert "events.amazonaws.com" in text and "sqs:SendMessage" in text


def test_policy_for_another_rule_fails_the_rule_row(wiring: dict[str, Any]) -> None:
    other = wiring["rule_arn"] + "-other"
    set_policy(wiring["sqs"], wiring["url"], wiring["queue_arn"], other)
    code, text = _check()
    assert code == 1 and events_rows(text)["events rule"] == "F", text
    assert "aws:SourceArn" in text


def test_rule_for_another_cluster_fails(wiring: dict[str, Any]) -> None:
    wiring["events"].put_rule(
        Name=wiring["rule"], EventPattern=json.dumps({**PATTERN, "detail": {"clusterArn": ["arn:other"]}})
    )
    code, text = _check()
    assert code == 1 and events_rows(text)["events rule"] == "F", text
    assert wiring["cluster_arn"] in text


def test_disabled_or_missing_rule_fails(wiring: dict[str, Any]) -> None:
    wiring["events"].disable_rule(Name=wiring["rule"])
    code, text = _check()
    assert code == 1 and "is DISABLED" in text, text
    wiring["events"].remove_targets(Rule=wiring["rule"], Ids=["queue"])
    code, text = _check()
    assert code == 1 and "no EventBridge rule targets" in text, text
    wiring["events"].put_targets(Rule=wiring["rule"], Targets=[{"Id": "queue", "Arn": wiring["queue_arn"]}])


def test_rule_for_other_events_fails(wiring: dict[str, Any]) -> None:
    wiring["events"].put_rule(
        Name=wiring["rule"],
        EventPattern=json.dumps({"source": ["aws.ecs"], "detail-type": ["ECS Service Action"]}),
    )
    _, text = _check()
    assert "does not match detail-type 'ECS Task State Change'" in text, text


def test_queue_policies_with_wildcards_are_matched_as_iam_matches_them(wiring: dict[str, Any]) -> None:
    """ArnLike and ArnEquals take * and ? in each part of the ARN; StringLike over the whole string."""
    rule_arn, queue_arn = wiring["rule_arn"], wiring["queue_arn"]
    prefix = rule_arn.rsplit("/", 1)[0]
    for operator, pattern in (
        ("ArnLike", f"{prefix}/rule-*"),
        ("ArnEquals", f"{prefix}/rule-*"),
        ("ArnLike", rule_arn.replace(":events:", ":*:")),
        ("StringLike", f"{prefix}/rule-?*"),
        ("ArnLike", "*"),
    ):
        set_policy(wiring["sqs"], wiring["url"], queue_arn, pattern, operator=operator)
        code, text = _check()
        assert code == 0 and events_rows(text)["events rule"] == "P", (operator, pattern, text)
    for operator, pattern in (
        ("ArnLike", f"{prefix}/other-*"),
        ("StringEquals", f"{prefix}/rule-*"),  # no wildcards in StringEquals
        ("ArnLike", "arn:aws:events:*:*"),  # too few parts: an ARN pattern needs all six
    ):
        set_policy(wiring["sqs"], wiring["url"], queue_arn, pattern, operator=operator)
        code, text = _check()
        assert code == 1 and events_rows(text)["events rule"] == "F", (operator, pattern, text)
        assert "aws:SourceArn" in text
    # A wildcard in the statement's Resource covers the queue too.
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn.rsplit(":", 1)[0] + ":ev-*",
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }
    wiring["sqs"].set_queue_attributes(
        QueueUrl=wiring["url"], Attributes={"Policy": json.dumps({"Statement": [statement]})}
    )
    code, text = _check()
    assert code == 0 and events_rows(text)["events queue policy"] == "P", text
    for resource, row in (("*", "P"), (queue_arn.rsplit(":", 1)[0] + ":other-*", "F")):
        statement["Resource"] = resource
        wiring["sqs"].set_queue_attributes(
            QueueUrl=wiring["url"], Attributes={"Policy": json.dumps({"Statement": [statement]})}
        )
        assert events_rows(_check()[1])["events queue policy"] == row, resource


def test_a_rule_must_admit_this_executors_started_by(wiring: dict[str, Any]) -> None:
    from ecs_executor.core.state_change import rule_pattern

    cluster = wiring["cluster_arn"]
    wiring["events"].put_rule(Name=wiring["rule"], EventPattern=json.dumps(rule_pattern([cluster])))
    code, text = _check()
    assert code == 0 and events_rows(text)["events rule"] == "P", text
    for started_by in (["ecs-svc/1234"], [{"prefix": "airflow-ecs-executor/team"}], [{"wildcard": "x*"}]):
        pattern = {**PATTERN, "detail": {"clusterArn": [cluster], "startedBy": started_by}}
        wiring["events"].put_rule(Name=wiring["rule"], EventPattern=json.dumps(pattern))
        code, text = _check()
        assert code == 1 and "does not admit this executor's tasks ('airflow-ecs-executor')" in text, text
    exact = {**PATTERN, "detail": {"clusterArn": [cluster], "startedBy": ["airflow-ecs-executor"]}}
    wiring["events"].put_rule(Name=wiring["rule"], EventPattern=json.dumps(exact))
    assert _check()[0] == 0


def test_only_an_invalid_handle_proves_the_right_to_delete() -> None:
    """moto does not enforce IAM; SQS's answers are given by stand-in clients here."""
    from botocore.exceptions import ClientError

    from ecs_executor.check.event_wiring import _rights_rows

    def sqs_answering(code: str | None) -> Any:
        class Sqs:
            def receive_message(self, **_: Any) -> Any:
                return {}

            def delete_message(self, **_: Any) -> Any:
                if code is None:
                    return {}
                raise ClientError({"Error": {"Code": code, "Message": "m"}}, "DeleteMessage")

        return Sqs()

    url = "https://sqs.us-east-1.amazonaws.com/1/q"
    for code in ("ReceiptHandleIsInvalid", "AWS.SimpleQueueService.ReceiptHandleIsInvalid", None):
        assert _rights_rows(sqs_answering(code), url)[1].ok, code
    for code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "KMS.AccessDeniedException"):
        _, delete = _rights_rows(sqs_answering(code), url)
        assert not delete.ok and code in delete.detail, code
    _, delete = _rights_rows(sqs_answering("QueueDoesNotExist"), url)
    assert "does not show whether sqs:DeleteMessage is allowed" in delete.fix
    _, delete = _rights_rows(sqs_answering("AccessDenied"), url)
    assert "Allow sqs:DeleteMessage" in delete.fix


def test_denied_sqs_rights_fail_with_the_action_to_allow() -> None:
    """moto does not enforce IAM, so SQS's AccessDenied answer is given by a stand-in client here."""
    from botocore.exceptions import ClientError

    from ecs_executor.check.event_wiring import _rights_rows

    class DeniedSqs:
        def receive_message(self, **_: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "ReceiveMessage"
            )

        def delete_message(self, **_: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "ReceiptHandleIsInvalid", "Message": "bad handle"}}, "DeleteMessage"
            )

    receive, delete = _rights_rows(DeniedSqs(), "https://sqs.us-east-1.amazonaws.com/1/q")
    assert not receive.ok and "sqs:ReceiveMessage" in receive.fix
    assert delete.ok  # an invalid handle means the right to delete is there
