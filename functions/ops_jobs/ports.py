"""AWS adapters for the scheduled jobs' ports (DynamoDB via PynamoDB/boto3, SNS, S3).

Jobs read calls for one account-period straight from the calls table's ``by-account`` index
(bounded by the period), unlike the interactive reports, which read rollups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calltrack import clock
from calltrack.settings import Settings
from ops_jobs.common import CallFact, JobPorts, call_fact_from_item

TTL_DAYS = {"missed-call-spike-check": 35, "weekly-unanswered-alert": 400}


def read_calls(account: str, start: datetime, end: datetime) -> list[CallFact]:
    from calltrack.call_items import call_items

    # test calls (the account's test_callers) are left out of every alert and review
    calls = call_items().between(account, start, end)
    return [call_fact_from_item(call) for call in calls if not call.get("test")]


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


class SnsPublisher:
    def __init__(self, settings: Settings) -> None:
        self.topic_arn = settings.ops_topic_arn
        self.region = settings.region
        self._client: Any = None

    def __call__(self, subject: str, message: str, attributes: dict[str, str | int | float]) -> str:
        if not self.topic_arn:
            raise RuntimeError("CALLTRACK_OPS_TOPIC_ARN is not set: nowhere to publish")
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
            TopicArn=self.topic_arn, Subject=subject, Message=message, MessageAttributes=attrs
        )
        return str(response["MessageId"])


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
        spend=read_spend,
        blobs=S3Blobs(settings),
    )
