"""GET /v1/reviews and GET /v1/reviews/{month}: the stored monthly channel reviews (exports bucket)."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from calltrack.auth import principal_from_app
from calltrack.errors import BadRequest, NotFound

router = Router()

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
READ_ROLES = ("admin", "manager", "marketer")
_s3: Any = None


def _client() -> Any:
    global _s3
    if _s3 is None:
        import boto3

        from calltrack.settings import get_settings

        _s3 = boto3.client("s3", region_name=get_settings().region)
    return _s3


def _account() -> str:
    principal = principal_from_app(router)
    principal.require_role(*READ_ROLES)
    return principal.scoped_account(router.current_event.get_query_string_value("account"))


def list_months(s3: Any, bucket: str, account: str) -> list[str]:
    months = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"reviews/{account}/"):
        for obj in page.get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name.endswith(".json") and MONTH.match(name[:-5]):
                months.add(name[:-5])
    return sorted(months, reverse=True)


def read_review(s3: Any, bucket: str, account: str, month: str, ext: str) -> bytes | None:
    try:
        obj = s3.get_object(Bucket=bucket, Key=f"reviews/{account}/{month}.{ext}")
    except s3.exceptions.NoSuchKey:
        return None
    body: bytes = obj["Body"].read()
    return body


@router.get("/v1/reviews")
def get_reviews() -> dict[str, Any]:
    from calltrack.settings import get_settings

    account = _account()
    months = list_months(_client(), get_settings().exports_bucket, account)
    return {
        "account": account,
        "reviews": [
            {"month": m, "url": f"/v1/reviews/{m}", "html_url": f"/v1/reviews/{m}?format=html"}
            for m in months
        ],
    }


@router.get("/v1/reviews/<month>")
def get_review(month: str) -> Response[Any]:
    from calltrack.settings import get_settings

    account = _account()
    if not MONTH.match(month):
        raise BadRequest("month must be YYYY-MM (e.g. 2026-11)", field="month")
    fmt = (router.current_event.get_query_string_value("format") or "json").lower()
    if fmt not in ("json", "html"):
        raise BadRequest("format must be json or html", field="format")
    body = read_review(_client(), get_settings().exports_bucket, account, month, fmt)
    if body is None:
        raise NotFound(f"no review for {month}")
    if fmt == "html":
        return Response(status_code=200, content_type="text/html; charset=utf-8", body=body.decode("utf-8"))
    return Response(status_code=200, content_type="application/json", body=json.dumps(json.loads(body)))
