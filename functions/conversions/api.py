"""GET /v1/conversions and the manual-import files (admin, marketer); bundled into report_api.

``GET /v1/conversions?from=&to=&destination=&status=`` lists the account's conversions whose call
started in the local date range (newest first). ``GET /v1/conversions/google-ads.csv`` and
``/yahoo-ads.csv`` are the platforms' import templates (conversions.csv_files).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Protocol, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from calltrack import api, days
from calltrack.api import ERRORS, RoutePorts, current_caller, json_response, route_ports
from calltrack.errors import BadRequest

router = Router()
ROLES = ("admin", "marketer")
DESTINATIONS = ("google_ads", "yahoo_ads", "meta", "ga4")
STATUSES = ("pending", "sent", "failed", "skipped")


class AccountConversions(Protocol):
    def of_account(self, account: str, lo: str, hi: str) -> Iterator[dict[str, Any]]: ...


class ConversionPorts(RoutePorts, Protocol):
    @property
    def conversions(self) -> AccountConversions: ...


def _rows(caller: Any, from_: str | None, to: str | None) -> tuple[list[dict[str, Any]], str]:
    start, end = days.parse_range(from_, to, today=caller.today())
    lo, hi = days.local_day_bounds(start, end, caller.timezone)
    store = cast(ConversionPorts, route_ports(router)).conversions
    last = hi - timedelta(seconds=1)  # hi is exclusive
    rows = list(
        store.of_account(
            caller.account, lo.strftime("%Y-%m-%dT%H:%M:%SZ"), last.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    )
    return rows, f"{start.isoformat()}-{end.isoformat()}"


def _one_of(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise BadRequest(f"{field}: one of {', '.join(allowed)} (got {str(value)[:30]!r})", field=field)
    return value


def conversion_json(row: dict[str, Any]) -> dict[str, Any]:
    restated = row.get("restated_value")
    return {
        "call_sid": row.get("call_sid"),
        "rule": row.get("rule"),
        "destination": row.get("destination"),
        "status": row.get("status"),
        "reason": row.get("reason"),
        "sent_at": row.get("sent_at"),
        "converted_at": row.get("converted_at"),
        "order_id": row.get("order_id"),
        "click_id_type": row.get("click_id_type"),
        "value": restated if restated is not None else row.get("value"),
        "value_first_sent": row.get("value"),
        "restated_at": row.get("restated_at"),
        "currency": row.get("currency"),
        "attempts": int(row.get("attempts") or 0),
        "note": row.get("note"),
    }


DestinationParam = Annotated[str | None, Query(description="Only this platform: " + ", ".join(DESTINATIONS))]
StatusParam = Annotated[str | None, Query(description="Only this status: " + ", ".join(STATUSES))]


@router.get("/v1/conversions", responses=ERRORS, summary="Conversions sent to the ad platforms")
def get_conversions(
    from_: api.FromParam = None,
    to: api.ToParam = None,
    destination: DestinationParam = None,
    status: StatusParam = None,
    account: api.AccountParam = None,
) -> Any:
    caller = current_caller(router, *ROLES)
    only_destination = _one_of(destination, DESTINATIONS, "destination")
    only_status = _one_of(status, STATUSES, "status")
    rows, _ = _rows(caller, from_, to)
    items = [
        conversion_json(r)
        for r in reversed(rows)
        if (only_destination is None or r.get("destination") == only_destination)
        and (only_status is None or r.get("status") == only_status)
    ]
    return json_response({"items": items}, items_read=len(rows))


def _csv(body: bytes, filename: str, charset: str, items_read: int) -> Response[Any]:
    """The file's exact bytes (Shift_JIS is not UTF-8): sent base64-encoded, as API Gateway wants
    binary bodies. Encoded here, not by Powertools, because its response validation would first
    turn a bytes body into text. Like every answer, one larger than Lambda may return (the base64
    text is what it carries) is a 400 naming ``from`` (``calltrack.api``'s check), not a 5xx."""
    import base64

    response: Response[Any] = Response(
        status_code=200,
        content_type=f"text/csv; charset={charset}",
        body=api.fits(base64.b64encode(body).decode("ascii")),
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            api.ITEMS_READ_HEADER: str(items_read),
        },
    )
    response.base64_encoded = True
    return response


def _import_file(platform: str, from_: str | None, to: str | None) -> Response[Any]:
    from conversions.csv_files import google_ads_csv, yahoo_ads_csv

    files = {"google-ads": (google_ads_csv, "utf-8"), "yahoo-ads": (yahoo_ads_csv, "shift_jis")}
    write, charset = files[platform]
    caller = current_caller(router, *ROLES)
    rows, span = _rows(caller, from_, to)
    return _csv(write(rows, caller.timezone), f"{platform}-conversions-{span}.csv", charset, len(rows))


@router.get(
    "/v1/conversions/google-ads.csv",
    responses=ERRORS,
    summary="Google Ads offline click-conversion import file (UTF-8, no BOM)",
)
def get_google_ads_csv(
    from_: api.FromParam = None, to: api.ToParam = None, account: api.AccountParam = None
) -> Response[Any]:
    return _import_file("google-ads", from_, to)


@router.get(
    "/v1/conversions/yahoo-ads.csv",
    responses=ERRORS,
    summary="Yahoo! JAPAN 検索広告 offline conversion import file (Shift_JIS)",
)
def get_yahoo_ads_csv(
    from_: api.FromParam = None, to: api.ToParam = None, account: api.AccountParam = None
) -> Response[Any]:
    return _import_file("yahoo-ads", from_, to)
