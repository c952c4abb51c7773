"""Recounting rollups from the stored calls (POST /v1/reports/recount, ``calltrack rollups recount``).

The repair for rollup rows that counted less than their calls add up to under today's rules. The
known case: until 2026-12-01 the consumer counted no lead for a call tagged ``qualified``; it now
does, so untagging such a call takes back a lead that was never added and leaves its day one lead
low (docs/decisions.md 2026-12-04). A recount adds what is missing.

A recount only ever **raises** a counter, to what the day's stored calls add up to (each call's
``report.rollup.contribution``, the consumer's own rule); it never lowers one. A row may rightly
hold more than the stored calls show: calls erased for a caller's privacy request and calls past
``retention.calls_days`` keep their counts (``report.rollup``'s module doc). No rule the consumer
ever had counted a call higher than today's does, so a row above its calls is not an error a
recount can see. And it raises only a row whose ``calls`` counter equals the number of stored
calls it should hold: that row counted exactly these calls, under an older rule. A row holding a
different number of calls is left as it is (``rows_unverified``): its calls may be counted under
another key (a call without a zone stamp counted in the zone the account had then, a value cut
differently), and raising it would count them twice. Equal numbers are not the same calls when
calls without a zone stamp (all from before 2026-12-01) are counted in a zone the account no longer
has: each day then holds as many calls as before, but not the same ones, and a lead raised on one
day is the lead its neighbour already holds. So a day with such a call is raised only when the
operator says the account's zone has not changed since those calls were counted (``zone_unchanged``);
otherwise its short rows are answered in ``unstamped_days``.

Beside the running consumer:
- a day with a call written in the last ``QUIET_S`` is left alone and answered in ``busy_days``:
  that write's stream record may not be counted yet, and raising for it too would count it twice;
- the calls come from the ``by-account`` index, which may lag the table: before a day's rows are
  raised, each of its calls is read again from the table (consistently) and a call whose
  ``version`` moved on makes the day busy;
- each raise is one ``UpdateItem ADD`` conditioned on the row still holding what the recount read:
  a consumer write in between cancels it and the day is answered busy. Run the recount again later.
It cannot see a consumer more than ``QUIET_S`` behind, or a skipped stream range waiting for the
hourly replay: run it while the ``Rollup…`` alarms are quiet (README "Reports, CRM and spend").

Only the operator may run it: only the operator sees the alarms that say it is safe to. Long
ranges go ``DAYS_PER_READ`` days at a time within the API's time limit, which is looked at before
each round and each raise: the answer's ``next_cursor`` (the day to go on from, possibly one
already partly raised: raising it again adds only what is still short) continues it. An answer
always finishes the first day it raises anything on, so every answer moves the cursor on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, ConfigDict, Field

from calltrack import clock
from calltrack.api import principal_from_app
from calltrack.days import has_zone_stamp, local_day_bounds, local_today, parse_day, parse_range
from calltrack.errors import BadRequest, Conflict, Forbidden
from calltrack.models.reports import DIMENSIONS
from calltrack.observability import make_logger
from report.rollup import Contribution, Number, add_counters, contribution, diff, split_row_key
from report.rollup_store import RollupRow
from report.runtime import report_ports

if TYPE_CHECKING:
    from calltrack.accounts import Accounts

logger = make_logger("report")
router = Router()

QUIET_S = 600  # a call written more recently may still be on the calls stream, uncounted
DAYS_PER_READ = 7  # days read and raised per round: one calls query, one rows query per dimension
BUDGET_S = 20.0  # a round's reads and each raise start only within this (the API answers in 29 s)
# What ``report.rollup.contribution`` reads of a call (and ``busy`` its ``updated_at``): the calls
# are read with only these, not their transcripts.
# ``call_sid`` and ``version`` to check each against the table before its day is raised.
CALL_FIELDS = ("call_sid", "version", "account", "test", "timezone", "status", "stage", "tags",
               "first_time", "talk_seconds", "value", "channel", "campaign", "keyword", "attribution",
               "landing_page", "tracking_number", "agent", "forward_to", "updated_at")
# A call's day is local to the zone it was stamped with (calltrack.days.call_timezone), which may
# differ from the account's current zone by up to 26 hours: the calls read reach this far around.
ZONE_MARGIN = timedelta(hours=26)


class RollupRaiser(Protocol):
    def raise_row(self, account: str, row_key: str, raises: Mapping[str, Number],
                  seen: Mapping[str, Number]) -> bool:
        """ADD ``raises`` to the row only if each raised counter still holds ``seen`` (absent when
        not in ``seen``); False when the row changed since it was read (nothing written)."""
        ...


class RecountPorts(Protocol):
    def calls(self, account: str, start: datetime, end: datetime) -> Iterable[Mapping[str, Any]]: ...
    def rows(self, account: str, dimension: str, from_day: date, to_day: date) -> list[RollupRow]: ...
    def versions(self, call_sids: Iterable[str]) -> dict[str, Any]:
        """Each call's ``version`` as the table holds it now (consistent reads); gone: left out."""
        ...
    @property
    def raiser(self) -> RollupRaiser: ...


@dataclass
class Recount:
    """What a recount found and did over some days."""

    days: list[dict[str, Any]] = field(default_factory=list)  # one summary per day with calls or raises
    busy_days: list[str] = field(default_factory=list)
    rows_raised: int = 0
    rows_unverified: int = 0  # short rows left as they are: they hold another number of calls
    unstamped_days: list[str] = field(default_factory=list)  # short, with calls of no zone stamp
    calls: int = 0


# ---------------------------------------------------------------- pure logic


def calls_by_day(
    calls: Iterable[Mapping[str, Any]], tz: str, days: set[str]
) -> dict[str, list[tuple[Mapping[str, Any], Contribution]]]:
    """Day -> each call counted on it (of ``days``) with its contribution (test calls, counted
    nowhere, left out)."""
    out: dict[str, list[tuple[Mapping[str, Any], Contribution]]] = {}
    for call in calls:
        counted = contribution(call, tz)
        day = _day_of(counted)
        if day in days:
            out.setdefault(day, []).append((call, counted))
    return out


def expected_rows(by_day: Mapping[str, list[tuple[Mapping[str, Any], Contribution]]]) -> Contribution:
    """Row key -> the counters the calls add up to."""
    rows: Contribution = {}
    for counted_calls in by_day.values():
        for _call, counted in counted_calls:
            for key, counters in counted.items():
                add_counters(rows.setdefault(key, {}), counters)
    return rows


def _day_of(counted: Contribution) -> str | None:
    for key in counted:
        return _row_day(key)
    return None


def _row_day(key: str) -> str:
    """The local day of a rollup row key (``dimension|YYYY-MM-DD#value``)."""
    return split_row_key(key)[1].partition("#")[0]


def shortfalls(expected: Contribution, stored: Contribution) -> tuple[Contribution, set[str]]:
    """Per row, each counter the stored row holds less of than its calls add up to, by how much
    (the positive part of ``report.rollup.diff``); and the short rows left out because they hold
    another number of calls (see the module doc)."""
    out: Contribution = {}
    unverified: set[str] = set()
    for key, change in diff({k: stored.get(k, {}) for k in expected}, expected).items():
        short = {counter: amount for counter, amount in change.items() if amount > 0}
        if short and change.get("calls"):
            unverified.add(key)
        elif short:
            out[key] = short
    return out, unverified


def busy(by_day: Mapping[str, list[tuple[Mapping[str, Any], Contribution]]], now: datetime,
         quiet_s: float) -> set[str]:
    """The days with a call written within ``quiet_s`` of ``now`` (or with no time of writing)."""
    since = (now - timedelta(seconds=quiet_s)).strftime("%Y-%m-%dT%H:%M:%S")
    return {day for day, counted_calls in by_day.items()
            if any(not call.get("updated_at") or str(call["updated_at"])[:19] > since
                   for call, _ in counted_calls)}


def recount_days(ports: RecountPorts, account: str, tz: str, first: date, last: date, *,
                 now: datetime, dry_run: bool, into: Recount,
                 out_of_time: Callable[[], bool] = lambda: False, zone_unchanged: bool = False,
                 finish_first: bool = False) -> date | None:
    """Recount the local days ``first``..``last`` of ``account`` into ``into``; -> None when done,
    else the first day whose rows were not all raised (out of time). ``finish_first``: the first
    day with something to raise is finished whatever the time (an answer always moves on)."""
    days = {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    # The rows first, then the calls: a call changed in between was written after ``now`` (busy),
    # so the calls read match what the rows had counted for every day that is not busy.
    stored: Contribution = {}
    for dimension in DIMENSIONS:
        for row in ports.rows(account, dimension, first, last):
            stored[f"{dimension}|{row.day}#{row.key}"] = dict(row.counters)
    lo, hi = local_day_bounds(first, last, tz)
    by_day = calls_by_day(ports.calls(account, lo - ZONE_MARGIN, hi + ZONE_MARGIN), tz, days)
    per_day = {day: len(counted_calls) for day, counted_calls in by_day.items()}
    expected = expected_rows(by_day)
    unsettled = busy(by_day, now, QUIET_S)
    raised_per_day: dict[str, dict[str, Number]] = {}
    rows_per_day: dict[str, int] = {}
    short, unverified = shortfalls(expected, stored)
    held: set[str] = set()  # short rows of days with unstamped calls: counted in the zone of then
    if not zone_unchanged:
        held = {key for key in short if any(not has_zone_stamp(call) for call, _ in by_day[_row_day(key)])}
        short = {key: raises for key, raises in short.items() if key not in held}
    unstamped = {_row_day(key) for key in held}
    stopped: str | None = None
    checked: set[str] = set()
    first_day: str | None = None
    for key, raises in sorted(short.items(), key=lambda item: split_row_key(item[0])[1]):  # by day
        dimension = split_row_key(key)[0]
        day = _row_day(key)
        if day in unsettled:
            continue
        first_day = first_day or day
        if out_of_time() and not (finish_first and day == first_day):
            stopped = day
            break
        if day not in checked:  # the index's copies of the day's calls against the table's
            checked.add(day)
            day_calls = [call for call, _ in by_day.get(day, ())]
            now_held = ports.versions(str(call.get("call_sid")) for call in day_calls)
            if any(now_held.get(str(call.get("call_sid"))) != call.get("version") for call in day_calls):
                unsettled.add(day)
                continue
        if not dry_run and not ports.raiser.raise_row(account, key, raises, stored.get(key, {})):
            unsettled.add(day)  # the consumer wrote the row since: what it added is not known here
            continue
        rows_per_day[day] = rows_per_day.get(day, 0) + 1
        if dimension == "channel":  # every call is on one channel row: these are the day's totals
            add_counters(raised_per_day.setdefault(day, {}), raises)
    done = sorted(d for d in days if stopped is None or d < stopped)
    for day in done:
        if day in unsettled:
            into.busy_days.append(day)
        if day in unstamped:
            into.unstamped_days.append(day)
        if per_day.get(day) or rows_per_day.get(day):
            into.days.append({"day": day, "calls": per_day.get(day, 0), "busy": day in unsettled,
                              "rows_raised": rows_per_day.get(day, 0), "raised": raised_per_day.get(day, {})})
    into.calls += sum(per_day[d] for d in done if d in per_day)
    into.rows_raised += sum(rows_per_day.values())
    into.rows_unverified += sum(1 for key in unverified if _row_day(key) in done)
    return date.fromisoformat(stopped) if stopped else None


def recount(ports: RecountPorts, account: str, tz: str, first: date, last: date, *, now: datetime,
            dry_run: bool, out_of_time: Callable[[], bool],
            zone_unchanged: bool = False) -> tuple[Recount, date | None]:
    """Recount ``first``..``last`` a few days at a time until done or out of time; -> what was
    found, and the day to go on from (None when done; always after ``first``: the first round is
    read whatever the time, and its first day with something to raise is finished)."""
    result = Recount()
    start = first
    while start <= last:
        if start > first and out_of_time():
            return result, start
        end = min(last, start + timedelta(days=DAYS_PER_READ - 1))
        stopped = recount_days(ports, account, tz, start, end, now=now, dry_run=dry_run, into=result,
                               out_of_time=out_of_time, zone_unchanged=zone_unchanged,
                               finish_first=start == first)
        if stopped is not None:
            return result, stopped
        start = end + timedelta(days=1)
    return result, None


# ---------------------------------------------------------------- the route


class RecountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str | None = Field(default=None, max_length=128, description="Operator token: the account")
    from_: str = Field(alias="from", max_length=10,
                       description="The first local day to recount (YYYY-MM-DD, the account's time zone)")
    to: str | None = Field(default=None, max_length=10, description="The last local day (default: today)")
    dry_run: bool = Field(default=False, description="Say what would be raised; write nothing")
    cursor: str | None = Field(default=None, max_length=10,
                               description="Go on from the previous answer's next_cursor (a day)")
    zone_unchanged: bool = Field(
        default=False,
        description="The account's time zone is the one its calls from before 2026-12-01 (which carry "
                    "no zone stamp) were counted in: their days may be raised too")


@router.post(
    "/v1/reports/recount",
    summary="Raise an account's rollups to what its stored calls add up to (operator only)",
    responses={
        200: {"description": "{account, from, to, dry_run, calls, rows_raised, rows_unverified, days, "
                             "busy_days, unstamped_days, next_cursor}: repeat with cursor=next_cursor "
                             "until it is null"},
        400: {"description": "A malformed day or cursor, or from after to (the field is named)"},
        403: {"description": "The token is not the operator's"},
        409: {"description": "The account's stored config does not validate: apply a fixed one first"},
    },
)
def post_recount(body: RecountIn) -> Response[Any]:
    principal = principal_from_app(router)
    if not principal.is_operator:  # only the operator sees the Rollup alarms that make it safe
        raise Forbidden("only the operator token recounts rollups (run it while the Rollup alarms are quiet)")
    account = principal.scoped_account(body.account)
    ports = report_ports(router)
    tz = _timezone(ports.accounts, account)
    now = clock.now()
    first, last = parse_range(body.from_, body.to, today=local_today(tz, now))
    resume = first
    if body.cursor is not None:
        resume = parse_day(body.cursor, "cursor")
        if not first <= resume <= last:
            raise BadRequest("cursor: not a day of this range", field="cursor")
    started = time.monotonic()
    found, next_day = recount(ports.recount, account, tz, resume, last, now=now, dry_run=body.dry_run,
                              out_of_time=lambda: time.monotonic() - started > BUDGET_S,
                              zone_unchanged=body.zone_unchanged)
    out = {
        "account": account, "from": first.isoformat(), "to": last.isoformat(), "dry_run": body.dry_run,
        "calls": found.calls, "rows_raised": found.rows_raised, "rows_unverified": found.rows_unverified,
        "days": found.days,
        "busy_days": found.busy_days, "unstamped_days": found.unstamped_days,
        "next_cursor": next_day.isoformat() if next_day else None,
    }
    logger.info("rollups recounted", extra={"audit": {
        "action": "rollups.recount", "principal_account": principal.account, "principal_role": principal.role,
        "account": account, "from": resume.isoformat(), "to": last.isoformat(), "dry_run": body.dry_run,
        "rows_raised": found.rows_raised, "busy_days": len(found.busy_days),
    }})
    return Response(status_code=200, content_type="application/json", body=json.dumps(out))


def _timezone(accounts: Accounts, account: str) -> str:
    """The account's zone; a 409 when its stored config no longer validates (the recount would
    have to guess the rules its calls were counted by; the consumer still counts them)."""
    from pydantic import ValidationError

    try:
        return str(accounts.get(account).timezone)
    except ValidationError:
        raise Conflict("account: its stored config does not validate; apply a fixed config, then recount",
                       field="account") from None


# ---------------------------------------------------------------- the adapters


class DynamoRollupRaiser:
    """``RollupRaiser`` over the rollups table (low-level client): one conditional UpdateItem."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def raise_row(self, account: str, row_key: str, raises: Mapping[str, Number],
                  seen: Mapping[str, Number]) -> bool:
        dimension, sk = split_row_key(row_key)
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds, conditions = [], []
        for i, (counter, amount) in enumerate(raises.items()):
            names[f"#c{i}"] = counter
            values[f":a{i}"] = {"N": str(amount)}
            adds.append(f"#c{i} :a{i}")
            if counter in seen:
                values[f":s{i}"] = {"N": str(seen[counter])}
                conditions.append(f"#c{i} = :s{i}")
            else:
                conditions.append(f"attribute_not_exists(#c{i})")
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"{account}#{dimension}"}, "sk": {"S": sk}},
                UpdateExpression="ADD " + ", ".join(adds),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (self.client.exceptions.ConditionalCheckFailedException,
                self.client.exceptions.TransactionConflictException):
            return False  # the row changed, or the consumer's transaction is writing it now
        return True


@dataclass(frozen=True)
class StoredRecountPorts:
    """The recount's reads (the calls' ``by-account`` index, the rollup reader) and its one write."""

    call_items: Any
    reader: Any
    raiser: RollupRaiser

    def calls(self, account: str, start: datetime, end: datetime) -> Iterable[Mapping[str, Any]]:
        return self.call_items.between(account, start, end, fields=CALL_FIELDS)

    def rows(self, account: str, dimension: str, from_day: date, to_day: date) -> list[RollupRow]:
        return list(self.reader.rows(account, dimension, from_day, to_day))

    def versions(self, call_sids: Iterable[str]) -> dict[str, Any]:
        return self.call_items.versions(call_sids)
