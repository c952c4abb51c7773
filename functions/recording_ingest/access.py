"""GET /v1/calls/{call_sid}/recording: a short-lived presigned S3 URL for the call's recording;
POST /v1/recordings/retry: requeue an account's failed and retrying recordings (operator or admin).

Only admin and manager tokens of the call's account (and the operator) may listen; marketers
get 403, other accounts 404 (a call of another account does not exist for them). Every grant is
logged as an audit line (who, which call, when), never with the caller's number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol, cast
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from calltrack.accounts import Accounts, UnknownAccount
from calltrack.api import RoutePorts, query_flag, route_ports
from calltrack.auth import Principal, principal_from_app
from calltrack.days import DEFAULT_TIMEZONE, parse_instant
from calltrack.errors import DomainError, NotFound
from calltrack.observability import make_logger

router = Router()
logger = make_logger("report")

URL_TTL_SECONDS = 300  # the issue: presigned URLs live at most 5 minutes
LISTEN_ROLES = ("admin", "manager")
_CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


class Gone(DomainError):
    status, code = 410, "gone"


# Port: (s3_key, expires_in_s, content_disposition | None) -> URL
Presigner = Callable[[str, int, "str | None"], str]


def download_filename(call: Mapping[str, Any], timezone: str) -> str:
    """YYYYMMDD-HHMM_{channel}_{last4}.mp3 in the account's time zone; ASCII-safe."""
    try:
        started = datetime.strptime(str(call.get("started_at"))[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        stamp = started.astimezone(ZoneInfo(timezone)).strftime("%Y%m%d-%H%M")
    except (ValueError, KeyError):
        stamp = "00000000-0000"
    channel = (
        re.sub(r"[^A-Za-z0-9_-]+", "-", str(call.get("channel") or "unknown")).strip("-")[:40] or "unknown"
    )
    digits = re.sub(r"\D", "", str(call.get("caller") or ""))
    last4 = digits[-4:] if len(digits) >= 4 else "anon"
    return f"{stamp}_{channel}_{last4}.mp3"


def grant(
    principal: Principal,
    call_sid: str,
    call: Mapping[str, Any] | None,
    *,
    timezone: str,
    download: bool,
    presign: Presigner,
    now: datetime,
) -> dict[str, Any]:
    """Check access and return {url, expires_at}. Raises Forbidden / NotFound / Gone."""
    principal.require_role(*LISTEN_ROLES)
    if call is None or (not principal.is_operator and call.get("account") != principal.account):
        raise NotFound(f"no call {call_sid}")
    recording = call.get("recording") or {}
    status = recording.get("status")
    if status == "expired":
        raise Gone("this call's recording expired under the account's retention policy and was deleted")
    if status != "stored" or not recording.get("s3_key"):
        detail = {
            None: "this call has no recording",
            "failed": f"this call's recording failed: {recording['reason']}"
            if recording.get("reason")
            else "Twilio reported that this call's recording failed",
            "absent": "Twilio reported no audio for this call's recording",
        }.get(status, "this call's recording is not stored yet")
        raise NotFound(detail)
    disposition = None
    if download:
        disposition = f'attachment; filename="{download_filename(call, timezone)}"'
    url = presign(str(recording["s3_key"]), URL_TTL_SECONDS, disposition)
    expires_at = (now + timedelta(seconds=URL_TTL_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"url": url, "expires_at": expires_at}


Presign = Callable[[str, int, "str | None"], str]  # recording key, seconds, disposition -> URL


# Port: (account | None, since ISO | None, cursor | None) -> {"requeued", "skipped", "next_cursor"}
RequeueRecordings = Callable[["str | None", "str | None", "str | None"], dict[str, Any]]


class RecordingAccessPorts(RoutePorts, Protocol):
    @property
    def presign(self) -> Presign: ...

    @property
    def requeue_recordings(self) -> RequeueRecordings: ...


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str | None = Field(default=None, max_length=128, description="Operator token: the account")
    since: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z?)?$",
        description="Only recordings whose row changed at or after this date (UTC, YYYY-MM-DD)",
    )
    cursor: str | None = Field(
        default=None, max_length=2048,
        description="Go on where the previous answer's next_cursor says (a large table takes "
                    "several requests)",
    )


def presigner(s3: Any, bucket: str) -> Presign:
    """Presigned GET URLs of the recordings bucket (an s3v4 client made by the composition root)."""

    def presign(key: str, expires_in: int, disposition: str | None) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ResponseContentType": "audio/mpeg"}
        if disposition:
            params["ResponseContentDisposition"] = disposition
        return str(s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    return presign


def _timezone(accounts: Accounts, account: str) -> str:
    try:
        return accounts.get(account).timezone
    except UnknownAccount:
        return DEFAULT_TIMEZONE


@router.get(
    "/v1/calls/<call_sid>/recording",
    summary="A presigned URL (5 minutes) for the call's recording; admin and manager only",
    responses={
        200: {"description": "{url, expires_at}"},
        403: {"description": "The token's role may not listen to recordings"},
        404: {"description": "No such call in this account, or it has no stored recording"},
        410: {"description": "The recording expired under the account's retention policy"},
    },
)
def get_recording(
    call_sid: Annotated[str, Path(description="Twilio CallSid")],
    download: Annotated[str | None, Query(description="1: download as an attachment")] = None,
) -> Response[Any]:
    import json

    from calltrack import clock

    principal = principal_from_app(router)
    principal.require_role(*LISTEN_ROLES)
    ports = cast(RecordingAccessPorts, route_ports(router))
    call = ports.calls.get(call_sid) if _CALL_SID.match(call_sid) else None
    wants_download = bool(query_flag(download, "download"))
    account = str(call.get("account")) if call else ""
    now = clock.now()
    body = grant(
        principal,
        call_sid,
        call,
        timezone=_timezone(ports.accounts, account) if wants_download and call else DEFAULT_TIMEZONE,
        download=wants_download,
        presign=ports.presign,
        now=now,
    )
    from calltrack import audit

    audit.record(account, principal, "recording.url", target=call_sid, detail={"download": wants_download})
    logger.info(
        "recording access granted",
        extra={
            "audit": {
                "action": "recording.url",
                "principal_account": principal.account,
                "principal_role": principal.role,
                "call_sid": call_sid,
                "account": account,
                "download": wants_download,
                "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        },
    )
    return Response(status_code=200, content_type="application/json", body=json.dumps(body))


@router.post(
    "/v1/recordings/retry",
    summary="Requeue failed and retrying recordings of an account (operator or account admin)",
    responses={
        200: {"description": "{account, since, requeued, skipped, next_cursor}: repeat with "
                             "cursor=next_cursor until it is null"},
        400: {"description": "A malformed date or cursor (the field is named)"},
        403: {"description": "The token is not the operator's or an admin's of this account"},
    },
)
def retry_recordings(body: RetryIn) -> Response[Any]:
    import json

    from calltrack import clock

    principal = principal_from_app(router)
    principal.require_role("admin")
    account = principal.scoped_account(body.account)
    if body.since is not None:  # the pattern lets 2026-02-30 through: it matches nothing, "requeued 0"
        parse_instant(body.since, "since")
    ports = cast(RecordingAccessPorts, route_ports(router))
    counts = ports.requeue_recordings(account, body.since, body.cursor)
    logger.info(
        "recordings requeued",
        extra={
            "audit": {
                "action": "recordings.retry",
                "principal_account": principal.account,
                "principal_role": principal.role,
                "account": account,
                "since": body.since,
                "at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                **counts,
            }
        },
    )
    out = {"account": account, "since": body.since, **counts}
    return Response(status_code=200, content_type="application/json", body=json.dumps(out))
