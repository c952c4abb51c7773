"""Report routes: channels (+ CSV), heatmap, agents, trend, and the calls CSV.

Every figure comes from the rollups (one Query per dimension and range) plus spend; the number
of DynamoDB items read is returned in the X-Calltrack-Items-Read header.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from calltrack import days
from calltrack.api import (
    ERRORS,
    AccountParam,
    Caller,
    FromParam,
    ToParam,
    csv_response,
    current_caller,
    json_response,
)
from calltrack.errors import BadRequest
from report import figures
from report.runtime import report_ports

router = Router()

ByParam = Annotated[str | None, Query(description="channel|campaign|keyword|landing_page|tracking_number")]
BY_CHOICES = figures.REPORT_DIMENSIONS


def _choice(value: str | None, choices: tuple[str, ...], field: str, default: str) -> str:
    chosen = value or default
    if chosen not in choices:
        raise BadRequest(f"{field}: must be one of {', '.join(choices)}", field=field)
    return chosen


def channel_report(
    caller: Caller, from_: str | None, to: str | None, by: str | None
) -> tuple[dict[str, Any], int]:
    from report.rollup_store import prorated_spend

    dimension = _choice(by, BY_CHOICES, "by", "channel")
    start, end = days.parse_range(from_, to, today=caller.today())
    rollups = report_ports(router).rollups
    rows = rollups.rows(caller.account, dimension, start, end)
    spend = rollups.spend(caller.account, start.isoformat()[:7], end.isoformat()[:7])
    spend_by_channel = prorated_spend(spend, start, end)
    currency = spend[0].currency if spend else None
    out_rows, totals = figures.channel_report(rows, dimension, spend_by_channel, currency)
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": dimension,
        "timezone": caller.timezone,
        "currency": currency,
        "rows": out_rows,
        "totals": totals,
    }
    return body, rows.items_read + spend.items_read


@router.get("/v1/reports/channels", responses=ERRORS, summary="Calls, funnel, spend, CPA and ROMI by source")
@router.get("/v1/reports/channels.csv", responses=ERRORS, summary="The channel report as CSV (UTF-8 BOM)")
def get_channels(
    from_: FromParam = None,
    to: ToParam = None,
    by: ByParam = None,
    account: AccountParam = None,
) -> Response[Any]:
    """The channel report, as JSON or (for the ``.csv`` path) as CSV."""
    from calltrack.csv_text import write_csv

    caller = current_caller(router)
    body, items = channel_report(caller, from_, to, by)
    if not router.current_event.path.endswith(".csv"):
        return json_response(body, items_read=items)
    rows = [[row[k] for k in figures.ROW_KEYS] for row in [*body["rows"], body["totals"]]]
    text = write_csv(figures.ROW_KEYS, rows)
    return csv_response(text, f"channels-{body['by']}-{body['from']}-{body['to']}.csv", items_read=items)


@router.get("/v1/reports/heatmap", responses=ERRORS, summary="Day-of-week x hour grid (7 x 24)")
def get_heatmap(
    from_: FromParam = None,
    to: ToParam = None,
    metric: Annotated[str | None, Query(description="calls|missed|answer_rate")] = None,
    account: AccountParam = None,
) -> Response[Any]:
    caller = current_caller(router)
    chosen = _choice(metric, ("calls", "missed", "answer_rate"), "metric", "calls")
    start, end = days.parse_range(from_, to, today=caller.today())
    rows = report_ports(router).rollups.rows(caller.account, "hour_of_week", start, end)
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "metric": chosen,
        "timezone": caller.timezone,
        "days": list(figures.WEEKDAYS),
        "hours": list(range(24)),
        "grid": figures.heatmap(rows, chosen),
    }
    return json_response(body, items_read=rows.items_read)


@router.get("/v1/reports/agents", responses=ERRORS, summary="Agent (or forward-to line) KPIs")
def get_agents(from_: FromParam = None, to: ToParam = None, account: AccountParam = None) -> Response[Any]:
    caller = current_caller(router)
    start, end = days.parse_range(from_, to, today=caller.today())
    rows = report_ports(router).rollups.rows(caller.account, "agent", start, end)
    body = {"from": start.isoformat(), "to": end.isoformat(), "rows": figures.agent_rows(rows)}
    return json_response(body, items_read=rows.items_read)


@router.get("/v1/reports/trend", responses=ERRORS, summary="Calls and funnel per day or week")
def get_trend(
    from_: FromParam = None,
    to: ToParam = None,
    interval: Annotated[str | None, Query(description="day|week")] = None,
    channel: Annotated[str | None, Query(description="Only this channel")] = None,
    change_date: Annotated[str | None, Query(description="YYYY-MM-DD: adds before/after summaries")] = None,
    account: AccountParam = None,
) -> Response[Any]:
    caller = current_caller(router)
    chosen = _choice(interval, ("day", "week"), "interval", "day")
    start, end = days.parse_range(from_, to, today=caller.today())
    change = days.parse_day(change_date, "change_date") if change_date else None
    if change is not None and not (start < change <= end):
        raise BadRequest("change_date: must be after from and not after to", field="change_date")
    rows = report_ports(router).rollups.rows(caller.account, "channel", start, end)
    selected = [r for r in rows if channel is None or r.key == channel]
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "interval": chosen,
        "channel": channel,
        "change_date": change.isoformat() if change else None,
        **figures.trend(selected, start, end, chosen, change),
    }
    return json_response(body, items_read=rows.items_read)
