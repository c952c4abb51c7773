"""GET /v1/calls/{call_sid}/transcript: the call's transcript, for admin and manager tokens only;
POST /v1/transcripts/retry: start an account's failed transcripts again (operator or admin).

Marketers get 403 (like recordings: what a caller said is personal data); another account's call
is 404. Every read is logged as an audit line (who, which call), never with the text.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ConfigDict, Field

from calltrack.api import current_caller, json_response, route_ports
from calltrack.errors import NotFound
from calltrack.observability import make_logger

router = Router()
logger = make_logger("transcripts")

READ_ROLES = ("admin", "manager")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def transcript_json(call: dict[str, Any]) -> dict[str, Any]:
    """The public TRANSCRIPT object: status, language and the segments as objects."""
    transcript = call.get("transcript") or {}
    if not transcript:
        raise NotFound("this call has no transcript (transcription is off, or the call was too short)")
    return {
        "call_sid": call.get("call_sid"),
        "status": transcript.get("status"),
        "language": transcript.get("language"),
        "recording_sid": transcript.get("recording_sid"),
        "truncated": bool(transcript.get("truncated")),
        "reason": transcript.get("reason"),
        "segments": [  # a hand-edited item of another shape shows what is readable, not a 500
            {"speaker": seg[0], "start": seg[1], "text": seg[2]}
            for seg in _list(transcript.get("segments")) if isinstance(seg, list | tuple) and len(seg) == 3
        ],
        "rule_hits": call.get("rule_hits") or {},
    }


@router.get(
    "/v1/calls/<call_sid>/transcript",
    summary="The call's transcript (speaker, start seconds, text); admin and manager only",
    responses={
        200: {"description": "{call_sid, status, language, segments[], truncated, rule_hits}"},
        403: {"description": "The token's role may not read transcripts"},
        404: {"description": "No such call in this account, or it has no transcript"},
    },
)
def get_transcript(call_sid: Annotated[str, Path(description="Twilio CallSid")]) -> Response[Any]:
    from calltrack import clock

    who = current_caller(router, *READ_ROLES)
    call = route_ports(router).calls.get_in_account(who.account, call_sid)
    body = transcript_json(call)
    from calltrack import audit

    audit.record(who.account, who.principal, "transcript.read", target=call_sid)
    logger.info("transcript read", extra={"audit": {
        "action": "transcript.read", "principal_account": who.principal.account,
        "principal_role": who.principal.role, "call_sid": call_sid, "account": who.account,
        "at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }})
    return json_response(body, items_read=1)


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str | None = Field(default=None, max_length=128, description="Operator token: the account")
    since: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z?)?$",
        description="Only calls that started on or after this date (UTC, YYYY-MM-DD; default: 30 days ago)",
    )
    cursor: str | None = Field(
        default=None, max_length=64,
        description="Go on where the previous answer's next_cursor says (many calls take several requests)",
    )


@router.post(
    "/v1/transcripts/retry",
    summary="Start an account's failed transcripts again (operator or account admin)",
    responses={
        200: {"description": "{account, since, requeued, next_cursor}: repeat with cursor=next_cursor "
                             "until it is null"},
        400: {"description": "A malformed date or cursor (the field is named)"},
        403: {"description": "The token is not the operator's or an admin's of this account"},
    },
)
def retry_transcripts(body: RetryIn) -> Response[Any]:
    from calltrack import clock
    from calltrack.auth import principal_from_app

    principal = principal_from_app(router)
    principal.require_role("admin")
    account = principal.scoped_account(body.account)
    counts = route_ports(router).retry_transcripts(account, body.since, body.cursor)
    logger.info("transcripts requeued", extra={"audit": {
        "action": "transcripts.retry", "principal_account": principal.account,
        "principal_role": principal.role, "account": account, "since": counts["since"],
        "requeued": counts["requeued"], "at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }})
    return json_response({"account": account, **counts})

