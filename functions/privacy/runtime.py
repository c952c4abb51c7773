"""The privacy function's composition root: settings checked and its CallerStore, built once."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from calltrack.settings import Needs
from privacy.console_users import CognitoAccountUsers
from privacy.store import DynamoCallerStore

TABLES = ("calls", "callers", "recordings", "crm_leads", "conversions", "webhook_deliveries",
          "rollup_markers", "tokens", "audit",
          # account deletion (operator): every other table that holds an account's items
          "accounts", "numbers", "leases", "lease_history", "spend", "rollups", "job_runs")
NEEDS = Needs(tables=TABLES, buckets=("recordings", "exports", "routing"), secrets=("admin_token",),
              queues=("recording",),  # an erasure asks the recordings function to delete Twilio's copies
              account_secrets="erase", user_pool="remove")


@functools.cache
def store() -> DynamoCallerStore:
    import boto3
    from botocore.config import Config

    from calltrack.clients import dynamodb
    from calltrack.settings import get_settings

    settings = get_settings(NEEDS)
    # SigV4: botocore still presigns S3 URLs with SigV2 by default, which S3 refuses for objects
    # under SSE-KMS (both buckets): the recording URLs and staged exports must be SigV4
    s3 = boto3.session.Session().client("s3", region_name=settings.region,
                                        config=Config(signature_version="s3v4"))
    return DynamoCallerStore(
        dynamodb(), s3, {t: settings.table_name(t) for t in TABLES},
        recordings_bucket=settings.recordings_bucket, exports_bucket=settings.exports_bucket,
        routing_bucket=settings.routing_bucket,
    )


@functools.cache
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def twilio_deletions(account: str) -> Callable[[list[dict[str, Any]]], None]:
    """The erasure's port to the recordings function: one ``erased`` message per recording on the
    recording queue (``recording_ingest.ingest.erased_message``), ten to a SendMessageBatch; raises
    when SQS takes one not (the erasure answers 5xx before the rows go: asking again sends again)."""
    from calltrack import clock
    from calltrack.settings import get_settings
    from recording_ingest.ingest import erased_message

    settings = get_settings(NEEDS)

    def send(rows: list[dict[str, Any]]) -> None:
        now = clock.now()
        for start in range(0, len(rows), 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(
                    erased_message(row, account, settings.twilio_account_sid, now), separators=(",", ":"))}
                for i, row in enumerate(rows[start:start + 10])
            ]
            answer = _sqs().send_message_batch(QueueUrl=settings.recording_queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} erased-recording messages")

    return send


@functools.cache
def account_users() -> CognitoAccountUsers:
    import boto3

    from calltrack.auth import revoke_console_user
    from calltrack.settings import SettingsError, get_settings

    settings = get_settings(NEEDS)
    if not settings.cognito_user_pool_id:
        raise SettingsError("CALLTRACK_COGNITO_USER_POOL_ID must be set")
    region = settings.cognito_user_pool_id.split("_", 1)[0]
    return CognitoAccountUsers(
        boto3.session.Session().client("cognito-idp", region_name=region),
        settings.cognito_user_pool_id,
        revoke_console_user,
    )


def reset() -> None:
    store.cache_clear()
    _sqs.cache_clear()
    account_users.cache_clear()
