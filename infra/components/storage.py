"""S3 buckets with the same guarantees everywhere: private, TLS-only, KMS, access-logged."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def access_logs_bucket(scope: Construct, id: str) -> s3.Bucket:
    """Target of server access logs. S3 log delivery only supports SSE-S3, not SSE-KMS."""
    return s3.Bucket(
        scope,
        id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
        removal_policy=RemovalPolicy.RETAIN,
    )


def private_bucket(
    scope: Construct,
    id: str,
    *,
    key: kms.IKey,
    logs: s3.IBucket,
    versioned: bool,
    noncurrent_days: int | None = None,
    expire_prefixes: dict[str, int] | None = None,
) -> s3.Bucket:
    rules = [
        s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
        )
    ]
    for prefix, days in (expire_prefixes or {}).items():
        rules.append(
            s3.LifecycleRule(id=f"expire-{prefix.strip('/')}", prefix=prefix, expiration=Duration.days(days))
        )
    if versioned and noncurrent_days:
        rules.append(
            s3.LifecycleRule(
                id="expire-noncurrent-versions", noncurrent_version_expiration=Duration.days(noncurrent_days)
            )
        )
    return s3.Bucket(
        scope,
        id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,  # one KMS data key per bucket-key period, not per object
        enforce_ssl=True,
        versioned=versioned,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=f"{id.lower()}/",
        lifecycle_rules=rules,
        removal_policy=RemovalPolicy.RETAIN,
    )
