"""Real adapters for recording_ingest's ports: the recordings table (PynamoDB) and S3.

Calls are read and written through ``calltrack.call_items``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from calltrack.models.recordings import Recording
from recording_ingest.fetch import NOT_READY
from recording_ingest.ingest import ERASED, TERMINAL, ClaimLost, RecordingErased, erased_row, iso


def _conditional_failed(err: UpdateError) -> bool:
    return getattr(err, "cause_response_code", None) == "ConditionalCheckFailedException"


def _row(model: Any) -> dict[str, Any]:
    return dict(model.attribute_values)


class DynamoRecordings:
    """recordings table: conditional status transitions keyed by RecordingSid."""

    def get(self, recording_sid: str) -> dict[str, Any] | None:
        try:
            return _row(Recording.get(recording_sid, consistent_read=True))
        except DoesNotExist:
            return None

    def claim(self, recording_sid: str, *, call_sid: str, account: str, now: datetime, lease_s: int,
              media: Mapping[str, Any] | None = None) -> None:
        epoch = int(now.timestamp())
        free = Recording.lease_until.does_not_exist() | (Recording.lease_until < epoch)
        condition = Recording.recording_sid.does_not_exist() | (~Recording.status.is_in(*TERMINAL) & free)
        actions: list[Any] = [
            Recording.call_sid.set(call_sid),
            Recording.account.set(account),
            Recording.status.set("fetching"),
            Recording.lease_until.set(epoch + lease_s),
            Recording.attempts.add(1),
            Recording.updated_at.set(iso(now)),
        ]
        actions += [getattr(Recording, name).set(int(value)) for name, value in (media or {}).items()]
        try:
            Recording(recording_sid).update(actions=actions, condition=condition)
        except UpdateError as err:
            if _conditional_failed(err):
                raise ClaimLost(recording_sid) from None
            raise

    def mark(
        self,
        recording_sid: str,
        *,
        call_sid: str,
        status: str,
        reason: str | None,
        now: datetime,
        next_attempt_at: str | None = None,
    ) -> None:
        actions: list[Any] = [
            Recording.call_sid.set(call_sid),
            Recording.status.set(status),
            Recording.lease_until.remove(),
            Recording.updated_at.set(iso(now)),
            Recording.reason.set(reason) if reason else Recording.reason.remove(),
            Recording.next_attempt_at.set(next_attempt_at)
            if next_attempt_at
            else Recording.next_attempt_at.remove(),
        ]
        if reason != NOT_READY:  # any other outcome ends a run of 404s
            actions.append(Recording.not_found.remove())
        condition = Recording.recording_sid.does_not_exist() | ~Recording.status.is_in(*TERMINAL)
        try:
            Recording(recording_sid).update(actions=actions, condition=condition)
        except UpdateError as err:
            if not _conditional_failed(err):
                raise

    def mark_stored(self, recording_sid: str, facts: Mapping[str, Any], *, now: datetime) -> None:
        actions: list[Any] = [
            Recording.status.set("stored"),
            Recording.call_sid.set(str(facts["call_sid"])),
            Recording.account.set(str(facts["account"])),
            Recording.s3_key.set(str(facts["s3_key"])),
            Recording.size_bytes.set(int(facts["size_bytes"])),
            Recording.stored_at.set(str(facts["stored_at"])),
            Recording.lease_until.remove(),
            Recording.reason.remove(),
            Recording.next_attempt_at.remove(),
            Recording.updated_at.set(iso(now)),
        ]
        for name in ("duration_seconds", "channels"):
            if facts.get(name) is not None:
                actions.append(getattr(Recording, name).set(int(facts[name])))
        try:
            not_erased = Recording.status.does_not_exist() | (Recording.status != ERASED)
            Recording(recording_sid).update(actions=actions, condition=not_erased)
        except UpdateError as err:
            if _conditional_failed(err):
                raise RecordingErased(recording_sid) from None
            raise

    def count_not_found(self, recording_sid: str) -> int:
        row = Recording(recording_sid)
        row.update(actions=[Recording.not_found.add(1)])  # ALL_NEW: the row's attributes now
        return int(row.not_found or 0)

    def mark_twilio_deleted(self, recording_sid: str) -> None:
        Recording(recording_sid).update(actions=[Recording.twilio_deleted.set(True)])

    def erase(self, recording_sid: str, call_sid: str, *, now: datetime) -> None:
        row = erased_row(recording_sid, call_sid, now.timestamp())
        Recording(str(row["recording_sid"]), call_sid=str(row["call_sid"]), status=str(row["status"]),
                  expires_at=int(row["expires_at"])).save()

    def mark_expired(self, recording_sid: str, *, now: datetime) -> bool:
        try:
            Recording(recording_sid).update(
                actions=[
                    Recording.status.set("expired"),
                    Recording.expired_at.set(iso(now)),
                    Recording.updated_at.set(iso(now)),
                    # out of the sparse by-account index: the sweep never reads it again
                    Recording.stored_at.remove(),
                ],
                condition=Recording.status == "stored",
            )
        except UpdateError as err:
            if _conditional_failed(err):
                return False
            raise
        return True

    def needing_retry(
        self, account: str | None, since_iso: str | None, start_key: dict[str, Any] | None = None,
        page_size: int = 200,
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Pages of rows that are ``failed`` or ``retrying`` (of ``account``, updated at or after
        ``since``), each with the key to resume after it (None after the last page).

        A filtered scan, one page of ``page_size`` rows read at a time: an operator's repair
        command, rare, resumed by the caller's cursor (docs/decisions.md 2026-11-30, 2026-12-01)."""
        condition = Recording.status.is_in("failed", "retrying")
        if account:
            condition &= Recording.account == account
        if since_iso:
            condition &= Recording.updated_at >= since_iso
        pages = Recording.scan(condition, last_evaluated_key=start_key, page_size=page_size).page_iter
        for page in pages:
            rows = [_row(Recording.from_raw_data(item)) for item in page.get("Items") or []]
            yield rows, pages.last_evaluated_key

    def stored_before(self, account: str, cutoff_iso: str) -> list[dict[str, Any]]:
        """Stored recordings of ``account`` with stored_at < cutoff (GSI by-account). An expired
        row still in the index (expired before expiry took ``stored_at`` away) is taken out of it
        as it is met, so the sweep's reads stay with the recordings still stored."""
        stored = []
        for r in Recording.by_account.query(account, Recording.stored_at < cutoff_iso):
            if r.status == "stored":
                stored.append(_row(r))
            elif r.status == "expired":
                try:
                    r.update(actions=[Recording.stored_at.remove()], condition=Recording.status == "expired")
                except UpdateError as err:
                    if not _conditional_failed(err):
                        raise
        return stored


class S3Objects:
    """The recordings bucket: private objects, server-side encrypted, ids as metadata."""

    def __init__(self, bucket: str, *, client: Any = None, sse: str = "", kms_key_id: str = "") -> None:
        self.bucket = bucket
        self._client = client
        # Default: no SSE header, so the bucket's default encryption applies (the deployed bucket:
        # the stack's customer-managed KMS key with an S3 bucket key). A bare "aws:kms" header
        # would switch to the AWS-managed aws/s3 key instead. Override only when needed.
        self.sse = sse
        self.kms_key_id = kms_key_id

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped,unused-ignore]

            self._client = boto3.client("s3")
        return self._client

    def put(self, key: str, body: bytes, *, metadata: Mapping[str, str], content_md5: str) -> None:
        extra: dict[str, Any] = {}
        if self.sse:
            extra["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id, BucketKeyEnabled=True)
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="audio/mpeg",
            ContentMD5=content_md5,
            Metadata=dict(metadata),
            **extra,
        )

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_every_version(self, key: str) -> None:
        """Delete the object for good: every version and delete marker of exactly ``key`` (the
        bucket is versioned, so a plain delete would keep the audio as a noncurrent version for
        ``recordings_noncurrent_days``). Idempotent."""
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
        versions = [
            {"Key": key, "VersionId": str(entry.get("VersionId") or "null")}
            for page in pages
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if entry.get("Key") == key
        ]
        for i in range(0, len(versions), 1000):
            answer = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": versions[i : i + 1000], "Quiet": True}
            )
            if answer.get("Errors"):
                raise RuntimeError(f"{len(answer['Errors'])} version(s) of a recording not deleted")
