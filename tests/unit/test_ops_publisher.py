"""The ops publisher (ops_jobs.ports.SnsPublisher) on moto's SQS and SNS: an alert reaches the
webhooks queue before the ops topic, so neither a refusing queue nor a failed publish loses it for
webhook subscribers, and a retried run plans no second delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from calltrack.account_config import parse_config
from calltrack.settings import Settings, queue_env
from ops_jobs.ports import SnsPublisher
from tests.support.accounts import account_config
from webhooks import plan

ATTRIBUTES: dict[str, str | int | float] = {"account": "acme", "kind": "missed-call-spike-check",
                                            "period": "2026-12-02T15", "missed": 3}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """An ops topic whose deliveries land in ``seen`` (what ops would read) and a webhooks queue."""
    from moto import mock_aws

    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="ops")["TopicArn"]
        seen = sqs.create_queue(QueueName="ops-seen")["QueueUrl"]
        seen_arn = sqs.get_queue_attributes(QueueUrl=seen, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=seen_arn)
        hooks = sqs.create_queue(QueueName="webhooks")["QueueUrl"]
        monkeypatch.setenv(queue_env("webhooks"), hooks)
        yield {"sqs": sqs, "topic": topic, "seen": seen, "hooks": hooks}


def drained(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    return out


def publisher(topic: str, *, subscribed: bool = True) -> SnsPublisher:
    """The publisher for an account with (or without) a webhook subscribed to its alerts."""
    return SnsPublisher(Settings(ops_topic_arn=topic, region="us-east-1"), lambda account, event: subscribed)


def test_a_webhooks_queue_that_refuses_the_alert_fails_the_run_before_ops_are_told(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the webhooks queue is gone (its URL names no queue)
    monkeypatch.setenv(queue_env("webhooks"), aws["hooks"] + "-gone")
    # When an alert is published, Then it fails (the job's run fails and is tried again)
    with pytest.raises(Exception, match="NonExistentQueue|does not exist"):
        publisher(aws["topic"])("[acme] 3 missed calls", "3 missed calls this hour\n", ATTRIBUTES)
    # And ops were told nothing yet, so the retried run tells both once
    assert drained(aws["sqs"], aws["seen"]) == []


def test_a_run_retried_after_a_failed_publish_plans_the_webhook_delivery_once(aws: dict[str, Any]) -> None:
    subject, text = "[acme] 3 missed calls", "3 missed calls this hour\n"
    # Given the ops topic refuses the first publish (after the queue took the alert)
    with pytest.raises(Exception, match="NotFound|does not exist"):
        publisher(aws["topic"] + "-gone")(subject, text, ATTRIBUTES)
    # When the run is tried again and publishes
    message_id = publisher(aws["topic"])(subject, text, ATTRIBUTES)
    # Then ops got it once
    assert message_id and len(drained(aws["sqs"], aws["seen"])) == 1
    # And the webhooks queue holds it twice as one event: the planner makes the same deliveries
    first, second = drained(aws["sqs"], aws["hooks"])
    assert first["id"] == second["id"] and first["type"] == "alert.spike"
    hook = {"id": "ops", "url": "https://hooks.example.jp/x", "events": ["alert.spike"], "secret": "ops"}
    cfg = parse_config(account_config("acme", webhooks=[hook]), local_mode=False)
    planned = [[p.delivery_id for p in plan.plan_alert(m, cfg, "2026-12-02T06:00:00Z")]
               for m in (first, second)]
    assert planned[0] == planned[1] and len(planned[0]) == 1


def test_an_alert_whose_words_changed_is_a_new_event(aws: dict[str, Any]) -> None:
    # Given the same alert period published with two different texts (a forced re-run after new calls)
    publisher(aws["topic"])("[acme] 3 missed calls", "3 missed calls\n", ATTRIBUTES)
    publisher(aws["topic"])("[acme] 4 missed calls", "4 missed calls\n", {**ATTRIBUTES, "missed": 4})
    # Then subscribers get both
    first, second = drained(aws["sqs"], aws["hooks"])
    assert first["id"] != second["id"]


def test_an_account_without_alert_webhooks_is_told_whatever_the_queue_does(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an account none of whose webhooks takes alert.spike, and the webhooks queue gone
    monkeypatch.setenv(queue_env("webhooks"), aws["hooks"] + "-gone")
    # When its alert is published, Then ops get it (the queue is not asked)
    assert publisher(aws["topic"], subscribed=False)("[acme] 3 missed calls", "3 missed\n", ATTRIBUTES)
    assert len(drained(aws["sqs"], aws["seen"])) == 1


def test_the_monthly_reviews_event_id_is_per_month() -> None:
    from ops_jobs.ports import webhook_event_id

    # Given the same review words for two months (the review names its month in "month")
    review = {"account": "acme", "kind": "monthly-channel-review"}
    ids = {webhook_event_id("[acme] review", "same words", {**review, "month": m})
           for m in ("2026-10", "2026-11")}
    # Then they are two events
    assert len(ids) == 2


def test_subscribed_webhooks_reads_the_accounts_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    from calltrack.account_config import parse_config
    from ops_jobs import ports

    hook = {"id": "ops", "url": "https://hooks.example.jp/x", "events": ["alert.weekly"], "secret": "ops"}
    cfg = parse_config(account_config("acme", webhooks=[hook]), local_mode=False)

    class Reader:
        def find(self, account: str) -> Any:
            return cfg if account == "acme" else None

    monkeypatch.setattr("calltrack.accounts.account_reader", lambda: Reader())
    assert ports.subscribed_webhooks("acme", "alert.weekly")
    assert not ports.subscribed_webhooks("acme", "alert.spike")
    assert ports.subscribed_webhooks("gone", "alert.spike")  # the planner decides (no account: nothing)

