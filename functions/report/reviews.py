"""GET /v1/reviews and GET /v1/reviews/{month}: the stored monthly channel reviews (exports bucket);
GET /v1/reviews/trials: every campaign's trial scored against the pass line (calltrack.trials)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from calltrack.api import ERRORS, AccountParam, FromParam, ToParam
from calltrack.auth import principal_from_app
from calltrack.days import month_start, parse_month
from calltrack.errors import BadRequest, NotFound

router = Router()

READ_ROLES = ("admin", "manager", "marketer")


def _account() -> str:
    principal = principal_from_app(router)
    principal.require_role(*READ_ROLES)
    return principal.scoped_account(router.current_event.get_query_string_value("account"))


class ReviewShelf:
    """The stored monthly reviews: ``reviews/{account}/{YYYY-MM}.json|html`` in the exports bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def months(self, account: str) -> list[str]:
        return list_months(self.s3, self.bucket, account)

    def read(self, account: str, month: str, ext: str) -> bytes | None:
        return read_review(self.s3, self.bucket, account, month, ext)


def list_months(s3: Any, bucket: str, account: str) -> list[str]:
    months = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"reviews/{account}/"):
        for obj in page.get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name.endswith(".json") and month_start(name[:-5]):
                months.add(name[:-5])
    return sorted(months, reverse=True)


def read_review(s3: Any, bucket: str, account: str, month: str, ext: str) -> bytes | None:
    try:
        obj = s3.get_object(Bucket=bucket, Key=f"reviews/{account}/{month}.{ext}")
    except s3.exceptions.NoSuchKey:
        return None
    body: bytes = obj["Body"].read()
    return body



# The review page is served by the API, which shares the console's origin when deployed: it may
# style itself (inline <style> and bars' widths) and nothing else: no script, no fetch, no form,
# no framing, and ``sandbox`` gives it an opaque origin, so even a mis-escaped name in it could
# neither run nor reach the console's session.
REVIEW_HTML_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'; sandbox"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}


@router.get("/v1/reviews")
def get_reviews() -> dict[str, Any]:
    from report.runtime import report_ports

    account = _account()
    months = report_ports(router).reviews.months(account)
    return {
        "account": account,
        "reviews": [
            {"month": m, "url": f"/v1/reviews/{m}", "html_url": f"/v1/reviews/{m}?format=html"}
            for m in months
        ],
    }


@router.get("/v1/reviews/trials", responses=ERRORS, summary="Campaign trials: sample, mean score, verdict")
def get_trials(from_: FromParam = None, to: ToParam = None, account: AccountParam = None) -> Response[Any]:
    """Campaign trials over ?from=&to= (the calls date range; default the last 30 days): sample
    count toward review.trial_sample_calls, mean score, scored share and the verdict."""
    from calltrack import days
    from calltrack.api import current_caller, json_response
    from calltrack.trials import trials
    from report.runtime import report_ports

    who = current_caller(router, *READ_ROLES)
    start, end = days.parse_range(from_, to, today=who.today())
    lo, hi = days.local_day_bounds(start, end, who.timezone)
    counter = [0]
    calls = _reviewed_calls(report_ports(router).calls, who.account, lo, hi, counter)
    review = who.config.review
    body = {
        "account": who.account,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "pass_score": review.pass_score,
        "trial_sample_calls": review.trial_sample_calls,
        "trials": trials(calls, target=review.trial_sample_calls, pass_score=review.pass_score),
    }
    return json_response(body, items_read=counter[0])


INBOX_FIELDS = (
    "call_sid",
    "started_at",
    "channel",
    "campaign",
    "agent",
    "talk_seconds",
    "stage",
    "value",
    "score",
)


def inbox_call(call: dict[str, Any], timezone: str) -> dict[str, Any]:
    """One call to listen to and score, as the review inbox lists it (no caller number)."""
    from calltrack.days import zone
    from calltrack.schedule import parse_instant

    out = {name: call.get(name) for name in INBOX_FIELDS}
    started = call.get("started_at")
    out["started_local"] = (
        parse_instant(str(started)).astimezone(zone(timezone)).isoformat(timespec="seconds")
        if started
        else None
    )
    recording = call.get("recording")
    out["recording_stored"] = isinstance(recording, dict) and recording.get("status") == "stored"
    return out


def review_inbox(
    account: str,
    month: str,
    calls: list[dict[str, Any]],
    *,
    timezone: str,
    sample_size: int,
    trial_sample_calls: int,
    pass_score: float,
) -> dict[str, Any]:
    """The month's review sample (calltrack.review_sample, as the monthly review draws it) and every
    campaign's trial sample, each call with its current stage and score."""
    from calltrack.review_sample import draw
    from calltrack.trials import trials

    ordered = sorted(calls, key=lambda c: (str(c.get("started_at")), str(c.get("call_sid"))))
    candidates = [
        c for c in ordered if c.get("status") == "answered" and inbox_call(c, timezone)["recording_stored"]
    ]
    drawn = sorted(
        draw(candidates, sample_size, account, month),
        key=lambda c: (str(c.get("started_at")), str(c.get("call_sid"))),
    )
    by_sid = {str(c.get("call_sid")): c for c in calls}
    out_trials = []
    for trial in trials(calls, target=trial_sample_calls, pass_score=pass_score):
        sample = [inbox_call(by_sid[str(s["call_sid"])], timezone) for s in trial.pop("sample")]
        out_trials.append({**trial, "calls": sample})
    sample = [inbox_call(c, timezone) for c in drawn]
    return {
        "account": account,
        "month": month,
        "pass_score": pass_score,
        "sample_size": sample_size,
        "sample": sample,
        "scored": sum(1 for c in sample if c["score"] is not None),
        "trials": out_trials,
    }


@router.get("/v1/reviews/inbox")
def get_inbox() -> Response[Any]:
    """The review inbox: ?month=YYYY-MM (default this month, account time zone)."""
    from calltrack import days
    from calltrack.api import current_caller, json_response
    from report.runtime import report_ports

    who = current_caller(router, *READ_ROLES)
    month = router.current_event.get_query_string_value("month") or who.today().strftime("%Y-%m")
    first = parse_month(month)
    from datetime import timedelta

    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    lo, hi = days.local_day_bounds(first, last, who.timezone)
    counter = [0]
    calls = _reviewed_calls(report_ports(router).calls, who.account, lo, hi, counter)
    review = who.config.review
    body = review_inbox(
        who.account,
        month,
        calls,
        timezone=who.timezone,
        sample_size=review.sample_size,
        trial_sample_calls=review.trial_sample_calls,
        pass_score=review.pass_score,
    )
    return json_response(body, items_read=counter[0])


@router.get("/v1/reviews/<month>")
def get_review(month: str) -> Response[Any]:
    from report.runtime import report_ports

    account = _account()
    parse_month(month)
    fmt = (router.current_event.get_query_string_value("format") or "json").lower()
    if fmt not in ("json", "html"):
        raise BadRequest("format must be json or html", field="format")
    body = report_ports(router).reviews.read(account, month, fmt)
    if body is None:
        raise NotFound(f"no review for {month}")
    if fmt == "html":
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=body.decode("utf-8"),
            headers=dict(REVIEW_HTML_HEADERS),
        )
    return Response(status_code=200, content_type="application/json", body=json.dumps(json.loads(body)))


def _reviewed_calls(calls: Any, account: str, lo: Any, hi: Any, counter: list[int]) -> list[dict[str, Any]]:
    """The account's calls in [lo, hi) a review looks at: test calls (the account's test_callers)
    change no review, as in the monthly review job."""
    return [c for c in calls.between(account, lo, hi, counter=counter) if not c.get("test")]
