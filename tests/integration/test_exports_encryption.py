"""Both writers of the exports bucket get one encryption: the bucket's default (SSE-KMS with the
data key), because neither sends an SSE header. The daily export used to force SSE-S3 (AES256)
while the review reports got the bucket's KMS default."""

from __future__ import annotations

from typing import Any

from tests.support import unique_account


def test_the_daily_export_and_the_review_reports_are_encrypted_alike(local_stack: Any) -> None:
    from calltrack.settings import get_settings
    from ops_jobs.monthly_review import review_key
    from ops_jobs.ports import S3Blobs

    settings = get_settings()
    bucket = settings.exports_bucket
    s3 = local_stack.stack.client("s3")
    default = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert default["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    # The calls_export function, as EventBridge runs it (writes the day files and the manifest)
    out = local_stack.run_job("daily-calls-export", "2026-11-26T00:30:00+09:00")
    assert out["function"] == "calls_export" and out["result"]["failures"] == 0
    export_key = out["result"]["manifest"]
    # The ops_jobs blob port the monthly review stores its reports with
    review = review_key(unique_account("sse"), "2026-11", "json")
    S3Blobs(settings).put(review, b"{}", "application/json")

    heads = {key: s3.head_object(Bucket=bucket, Key=key) for key in (export_key, review)}
    seen = {
        key: (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"), head.get("BucketKeyEnabled"))
        for key, head in heads.items()
    }
    expected = (
        "aws:kms",
        default["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        True,
    )
    assert seen == {export_key: expected, review: expected}
