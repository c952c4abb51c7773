"""AWS adapters for the scheduled jobs' ports (DynamoDB via PynamoDB/boto3, SNS, S3).

Jobs read calls for one account-period straight from the calls table's ``by-account`` index
(bounded by the period), unlike the interactive reports, which read rollups; the periods they
compare with (the monthly review's previous month, the weekly alert's baseline weeks) are read
from the rollups, whose counts outlive calls a short ``retention.calls_days`` has expired.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from calltrack import clock
from calltrack.settings import Settings
from calltrack.sqs_body import sqs_json
from ops_jobs.common import CallFact, JobPorts, call_facts

TTL_DAYS = {"missed-call-spike-check": 35, "weekly-unanswered-alert": 400, "callbacks-overdue": 400}


def read_calls(account: str, start: datetime, end: datetime) -> list[CallFact]:
    from calltrack.call_items import call_items

    # test calls (the account's test_callers) are left out of every alert and review
    return call_facts(call_items().between(account, start, end))


def read_counted(account: str, first: date, last: date) -> dict[str, dict[str, float]]:
    """channel -> counters summed over the local days ``first``..``last`` from the rollups (one
    Query; the counts outlive the calls, which ``retention.calls_days`` may have expired)."""
    from calltrack.models.reports import COUNTERS, NONE_VALUE, Rollup

    out: dict[str, dict[str, float]] = {}
    for row in Rollup.query(f"{account}#channel", Rollup.sk.between(f"{first.isoformat()}#",
                                                                    f"{last.isoformat()}$")):
        channel = row.sk.split("#", 1)[1]
        channel = "unknown" if channel == NONE_VALUE else channel  # as call_fact_from_item names it
        acc = out.setdefault(channel, dict.fromkeys(COUNTERS, 0.0))
        for counter in COUNTERS:
            acc[counter] += float(getattr(row, counter, 0) or 0)
    return out


def read_spend(account: str, month: str) -> dict[str, float]:
    from calltrack.models.reports import Spend

    out: dict[str, float] = {}
    for row in Spend.query(account, Spend.month_channel.startswith(f"{month}#")):
        channel = row.month_channel.split("#", 1)[1]
        out[channel] = out.get(channel, 0.0) + float(row.amount)
    return out


class DynamoRunStore:
    """JobRun rows as idempotency claims (conditional put) and decision records."""

    def claim(self, run_key: str, *, force: bool) -> dict[str, Any] | None:
        from pynamodb.exceptions import PutError

        from calltrack.models.jobs import CLAIM_LEASE_SECONDS, JobRun

        job, rest = run_key.split("#", 1)
        account, period = rest.rsplit("#", 1)
        now = clock.epoch()
        ttl = TTL_DAYS.get(job)
        row = JobRun(
            run_key,
            decided="running",
            job=job,
            account=account,
            period=period,
            claimed_at=int(now),
            expire_at=int(now + ttl * 86400) if ttl else None,
        )
        condition = None
        if not force:
            condition = (
                JobRun.run_key.does_not_exist()
                | (JobRun.decided == "failed")
                | ((JobRun.decided == "running") & (JobRun.claimed_at < int(now - CLAIM_LEASE_SECONDS)))
            )
        try:
            row.save(condition=condition)
            return None
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        existing = JobRun.get(run_key, consistent_read=True)
        return {"decided": existing.decided, "finished_at": existing.finished_at}

    def finish(self, run_key: str, decided: str, detail: dict[str, Any]) -> None:
        from calltrack.models.jobs import JobRun

        JobRun(run_key).update(
            actions=[
                JobRun.decided.set(decided),
                JobRun.detail.set(detail),
                JobRun.finished_at.set(clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")),
            ]
        )

    def fail(self, run_key: str, error: str) -> None:
        from calltrack.models.jobs import JobRun

        JobRun(run_key).update(
            actions=[
                JobRun.decided.set("failed"),
                JobRun.error.set(error),
                JobRun.finished_at.set(clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")),
            ]
        )


# job (the "kind" attribute) -> the webhook event type of its message, and what to do next
# (AWS Chatbot's custom notification "nextSteps").
WEBHOOK_EVENT = {
    "weekly-unanswered-alert": "alert.weekly",
    "missed-call-spike-check": "alert.spike",
    "monthly-channel-review": "review.monthly",
}
NEXT_STEPS = {
    "weekly-unanswered-alert": ["Check who answers the phone in the worst hours (GET /v1/reports/heatmap)",
                                "Turn on voicemail or a longer ring_timeout if calls go unanswered"],
    "missed-call-spike-check": ["Check the business line is staffed and reachable now",
                                "See the hour's calls: GET /v1/calls?status=missed"],
    "monthly-channel-review": ["Read the review: GET /v1/reviews/{month}",
                               "Act on each channel's verdict (increase spend, review ad copy, improve "
                               "the script, change channel)"],
}


def chatbot_notification(subject: str, text: str, attributes: dict[str, str | int | float]) -> dict[str, Any]:
    """AWS Chatbot's custom notification (docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html):
    Slack and Teams show it as a card instead of raw text."""
    kind = str(attributes.get("kind", ""))
    steps = [step.replace("{month}", str(attributes.get("month", ""))) for step in NEXT_STEPS.get(kind, [])]
    return {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": subject,
            "description": text.strip()[:3500],
            "nextSteps": steps,
            "keywords": [k for k in (str(attributes.get("account", "")), kind) if k],
        },
        "metadata": {"eventType": WEBHOOK_EVENT.get(kind, kind), "summary": subject},
    }


def structured_message(subject: str, text: str, attributes: dict[str, str | int | float]) -> str:
    """SNS ``MessageStructure=json``: the plain text for email (``default``, ``email``) and the
    Chatbot JSON for HTTPS subscribers, which is how AWS Chatbot subscribes to a topic."""
    chat = json.dumps(chatbot_notification(subject, text, attributes), ensure_ascii=False)
    return json.dumps({"default": text, "email": text, "https": chat}, ensure_ascii=False)


def webhook_event_id(subject: str, text: str, attributes: dict[str, str | int | float]) -> str:
    """The ``id`` of an ops message on the webhooks queue: the same for the same alert (kind, account,
    period) with the same words, so a job retried after its SNS publish failed hands the webhooks
    queue a message the planner has already planned (delivery rows are idempotent by event id); an
    alert whose words changed (a forced re-run after new calls) is a new event."""
    import hashlib
    import uuid

    period = attributes.get("period") or attributes.get("month") or ""
    run = f"{attributes.get('kind', '')}#{attributes.get('account', '')}#{period}"
    words = hashlib.sha256(f"{subject}\n{text}".encode()).hexdigest()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"calltrack:ops:{run}:{words}"))


def subscribed_webhooks(account: str, event_type: str) -> bool:
    """Whether one of the account's webhooks takes ``event_type`` (the planner's test, in
    ``webhooks.plan``); True when the config cannot be read (the planner then decides)."""
    from calltrack.accounts import account_reader

    try:
        config = account_reader().find(account)
    except Exception:  # noqa: BLE001 - a read that fails must not silence the webhook
        logging.getLogger(__name__).warning("account config unreadable; alert handed to webhooks",
                                            exc_info=True)
        return True
    return config is None or any(event_type in hook.events for hook in config.webhooks)


class SnsPublisher:
    """Hands an ops message to the webhooks queue, which delivers it to the account's webhooks
    subscribed to its event type, then publishes it to the ops topic (text + Chatbot JSON).

    Only an account with a webhook subscribed to the message's event type hands it to the queue
    (``subscribed``). The queue goes first: when it refuses, nothing is published and the job's run
    fails, so the retried run reaches both (an SNS publish first would leave subscribers of
    ``alert.*`` without the alert for good: re-running it would e-mail ops twice). When the publish
    fails after the queue took the message, the retried run hands the queue the same event id again
    (``webhook_event_id``) and the planner delivers it once."""

    def __init__(self, settings: Settings, subscribed: Callable[[str, str], bool] | None = None) -> None:
        self.topic_arn = settings.ops_topic_arn
        self.region = settings.region
        self.subscribed = subscribed or subscribed_webhooks
        self._client: Any = None
        self._sqs: Any = None

    def __call__(self, subject: str, message: str, attributes: dict[str, str | int | float]) -> str:
        if not self.topic_arn:
            raise RuntimeError("CALLTRACK_OPS_TOPIC_ARN is not set: nowhere to publish")
        self._to_webhooks(subject, message, attributes)
        if self._client is None:
            import boto3

            self._client = boto3.client("sns", region_name=self.region)
        attrs = {}
        for key, value in attributes.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                if str(value):
                    attrs[key] = {"DataType": "String", "StringValue": str(value)}
            else:
                attrs[key] = {"DataType": "Number", "StringValue": repr(value)}
        response = self._client.publish(
            TopicArn=self.topic_arn, Subject=subject, MessageStructure="json",
            Message=structured_message(subject, message, attributes), MessageAttributes=attrs,
        )
        return str(response["MessageId"])

    def _to_webhooks(self, subject: str, text: str, attributes: dict[str, str | int | float]) -> None:
        """Send the message to the webhooks queue; an error propagates (the run fails, nothing is
        published yet)."""
        import os

        from calltrack.settings import queue_env

        event_type = WEBHOOK_EVENT.get(str(attributes.get("kind", "")))
        url = os.environ.get(queue_env("webhooks"), "")
        if event_type is None or not url or not attributes.get("account"):
            return
        if not self.subscribed(str(attributes["account"]), event_type):
            return  # ops alone hear it: a queue outage does not hold their alert
        body = {"type": event_type, "account": str(attributes["account"]),
                "id": webhook_event_id(subject, text, attributes),
                "created_at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "data": {"subject": subject, "text": text, **attributes}}
        if self._sqs is None:
            import boto3

            self._sqs = boto3.client("sqs", region_name=self.region)
        self._sqs.send_message(QueueUrl=url, MessageBody=sqs_json(body))


class S3Blobs:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.exports_bucket
        self.region = settings.region
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", region_name=self.region)
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)


def aws_ports(settings: Settings) -> JobPorts:
    from calltrack.accounts import account_reader

    return JobPorts(
        accounts=account_reader().all,
        calls=read_calls,
        runs=DynamoRunStore(),
        publish=SnsPublisher(settings),
        counted=read_counted,
        spend=read_spend,
        blobs=S3Blobs(settings),
    )
