"""The routing snapshot: each tracking number's routing, kept in S3 as well as in DynamoDB.

``calltrack apply`` (the admin context) writes one small object per tracking number,
``numbers/<E.164>.json``, holding the same row it writes to the ``numbers`` table (account, source,
and the routing the voice webhook needs: forward-to, recording, whisper, ring timeout ...), and
deletes the objects of numbers it removes. When DynamoDB is unreachable and a webhook process has
not cached a number's routing — every new Lambda container — the webhook reads that object, so
the caller still reaches their own business, not a deployment-wide fallback. S3 is a second store
on another service; the read happens only on that failure path. Import-light (no boto3 here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PREFIX = "numbers/"


def key(number: str) -> str:
    return f"{PREFIX}{number}.json"


def encode(row: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(row), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def decode(body: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(body)
    except ValueError:
        return None
    return row if isinstance(row, dict) and row.get("account") and row.get("number") else None


class SnapshotReader:
    """GetObject of one number's snapshot, with short timeouts (a caller is waiting)."""

    def __init__(self, bucket: str, region: str) -> None:
        self.bucket = bucket
        self.region = region
        self._client: Any = None

    def __call__(self, number: str) -> dict[str, Any] | None:
        if not self.bucket:
            return None
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                region_name=self.region,
                config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 2}),
            )
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key(number))
        except Exception as exc:  # NoSuchKey: not a tracking number (as far as the snapshot knows)
            code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404"):
                return None
            raise
        return decode(obj["Body"].read())
