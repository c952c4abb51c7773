"""Reporting: the exports bucket (QuickSight, review reports) and the DynamoDB stream consumers."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from calltrack.settings import stream_failures_env
from infra import nag
from infra.components.functions import construct_id
from infra.components.queues import DLQ_RETENTION, secure_queue
from infra.components.storage import private_bucket
from infra.wiring import StreamConsumer

MAX_RECORD_AGE_HOURS = 20


class Reporting(Construct):
    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, logs: s3.IBucket) -> None:
        super().__init__(scope, id)
        # Exports are regenerated from the tables; versioning would only keep stale copies.
        # Caller exports too large for one API answer wait a day at most (privacy.callers).
        self.exports = private_bucket(self, "Exports", key=key, logs=logs, versioned=False,
                                      expire_prefixes={"privacy-exports/": 1})
        # Where each stream consumer's skipped batches are recorded (after retrying, and bisecting
        # where it may): one queue per consumer, which it replays hourly (calltrack.stream_replay).
        self.stream_failures: dict[str, sqs.Queue] = {}

    def add_stream_consumer(
        self, consumer: StreamConsumer, table: dynamodb.ITable, fn: lambda_.Function, retry_attempts: int
    ) -> None:
        if table.table_stream_arn is None:
            raise ValueError(
                f"stream consumer {consumer.consumer}: table {consumer.table} has no stream "
                "(set stream= in its model's table_meta)"
            )
        failures = secure_queue(self, f"{construct_id(consumer.consumer)}StreamFailures",
                                retention_period=DLQ_RETENTION)
        nag.acknowledge(failures, "AwsSolutions-SQS3", nag.STREAM_FAILURES_REASON)
        self.stream_failures[consumer.consumer] = failures
        failures.grant_consume_messages(fn)  # the hourly replay reads and deletes its records
        fn.add_environment(stream_failures_env(consumer.consumer), failures.queue_url)
        fn.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=consumer.batch_size,
                bisect_batch_on_error=consumer.bisect_on_error,
                report_batch_item_failures=True,
                retry_attempts=retry_attempts,
                # under the stream's 24 hours: a batch skipped for its age can still be read back
                # by the consumer's hourly replay (calltrack.stream_replay)
                max_record_age=Duration.hours(MAX_RECORD_AGE_HOURS),
                on_failure=sources.SqsDlq(failures),
            )
        )
