"""Recounting rollups from the stored calls (``report.recount``): raise only, never twice.

The rollups here are what the consumer leaves (``report.rollup.contribution`` of each call), edited
to what an older consumer left: until 2026-12-01 a call tagged ``qualified`` counted no lead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from report import recount
from report.rollup import contribution
from tests.support.rollup_store import InMemoryRecount

ACCOUNT = "acme"
TZ = "Asia/Tokyo"
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
LONG_AGO = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def a_call(sid: str, started_at: str, *, tags: list[str] | None = None, updated_at: str = LONG_AGO,
           **fields: Any) -> dict[str, Any]:
    return {"call_sid": sid, "version": 1, "account": ACCOUNT, "started_at": started_at,
            "status": "completed",
            "channel": "flyer", "tracking_number": "+81312345678", "tags": tags or [],
            "updated_at": updated_at, **fields}


def rows_as_counted(calls: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """The rollup rows today's consumer leaves for ``calls``."""
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for call in calls:
        for key, counters in contribution(call, TZ).items():
            row = rows.setdefault((ACCOUNT, key), {})
            for counter, amount in counters.items():
                row[counter] = row.get(counter, 0) + amount
    return rows


def as_counted_before_2026_12_01(calls: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """The rows an older consumer left: no lead for a call tagged qualified (nor any other here)."""
    rows = rows_as_counted(calls)
    for row in rows.values():
        row.pop("leads", None)
    return rows


def run(store: InMemoryRecount, first: date, last: date, *, dry_run: bool = False) -> recount.Recount:
    """A recount of calls from before the zone stamp in an account that kept its zone."""
    found, next_day = recount.recount(store, ACCOUNT, TZ, first, last, now=NOW, dry_run=dry_run,
                                      out_of_time=lambda: False, zone_unchanged=True)
    assert next_day is None
    return found


def leads(store: InMemoryRecount, day: str, channel: str = "flyer") -> float:
    return store.stored_rows.get((ACCOUNT, f"channel|{day}#{channel}"), {}).get("leads", 0)


def test_a_qualified_call_an_older_consumer_counted_no_lead_for_is_raised_to_one_lead_on_every_row() -> None:
    # Given a day with a call tagged qualified whose rows hold no lead (counted before 2026-12-01)
    calls = [a_call("CA1", "2026-11-20T01:00:00Z", tags=["qualified"]), a_call("CA2", "2026-11-20T02:00:00Z")]
    rows = as_counted_before_2026_12_01(calls)
    store = InMemoryRecount(calls, rows)

    # When the day is recounted
    found = run(store, date(2026, 11, 20), date(2026, 11, 20))

    # Then every row of the call (one per dimension) holds its lead, and the answer says so
    assert leads(store, "2026-11-20") == 1
    assert store.stored_rows == rows_as_counted(calls)
    assert found.rows_raised == 7 and found.calls == 2 and found.busy_days == []
    assert found.days == [{"day": "2026-11-20", "calls": 2, "busy": False, "rows_raised": 7,
                           "raised": {"leads": 1}}]


def test_an_untagged_call_that_left_its_day_one_lead_low_is_raised_back() -> None:
    # Given the untagging of such a call took back a lead that was never added (the row holds -1)
    calls = [a_call("CA1", "2026-11-21T01:00:00Z", tags=[])]
    rows = rows_as_counted(calls)
    for row in rows.values():
        row["leads"] = -1
    store = InMemoryRecount(calls, rows)

    # When the day is recounted
    run(store, date(2026, 11, 21), date(2026, 11, 21))

    # Then the day holds no lead again (not minus one)
    assert leads(store, "2026-11-21") == 0


def test_a_row_above_its_stored_calls_is_never_lowered() -> None:
    # Given a day whose rows count an erased caller's answered lead on top of the stored call
    calls = [a_call("CA1", "2026-11-22T01:00:00Z")]
    erased = a_call("CA0", "2026-11-22T00:30:00Z", stage="lead", talk_seconds=90)
    rows = rows_as_counted([*calls, erased])
    before = {k: dict(v) for k, v in rows.items()}
    store = InMemoryRecount(calls, rows)

    # When the day is recounted
    found = run(store, date(2026, 11, 22), date(2026, 11, 22))

    # Then nothing was written: the erased call keeps its counts
    assert store.writes == [] and store.stored_rows == before
    assert found.rows_raised == 0


def test_a_day_with_a_call_changed_in_the_last_ten_minutes_is_left_for_later() -> None:
    # Given two days one lead low, one of them with a call written 2 minutes ago (its stream
    # record may not be counted yet)
    recent = (NOW - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    calls = [a_call("CA1", "2026-11-23T01:00:00Z", tags=["qualified"]),
             a_call("CA2", "2026-11-24T01:00:00Z", tags=["qualified"], updated_at=recent)]
    rows = as_counted_before_2026_12_01(calls)
    store = InMemoryRecount(calls, rows)

    # When both days are recounted
    found = run(store, date(2026, 11, 23), date(2026, 11, 24))

    # Then the quiet day is raised, the busy one untouched and named
    assert leads(store, "2026-11-23") == 1 and leads(store, "2026-11-24") == 0
    assert found.busy_days == ["2026-11-24"]
    assert {w[0].split("|")[1][:10] for w in store.writes} == {"2026-11-23"}


def test_a_row_the_consumer_wrote_while_the_recount_ran_is_not_raised_and_the_day_is_busy() -> None:
    # Given a day one lead low, and the consumer adding to its channel row before the recount writes
    calls = [a_call("CA1", "2026-11-25T01:00:00Z", tags=["qualified"])]
    rows = as_counted_before_2026_12_01(calls)
    store = InMemoryRecount(calls, rows)

    def consumer_writes(account: str, row_key: str) -> None:
        if row_key.startswith("channel|"):
            store.stored_rows[(account, row_key)]["calls"] += 1
            store.stored_rows[(account, row_key)]["leads"] = 1

    store.before_raise = consumer_writes

    # When the day is recounted
    found = run(store, date(2026, 11, 25), date(2026, 11, 25))

    # Then the channel row keeps the consumer's count (not 2 leads) and the day is reported busy
    assert leads(store, "2026-11-25") == 1
    assert found.busy_days == ["2026-11-25"]


def test_a_call_untagged_while_the_recount_reads_leaves_its_day_busy_not_raised() -> None:
    # Given a day whose qualified call's lead is counted, and the call untagged (and the consumer
    # taking the lead back) just after the recount's first read
    calls = [a_call("CA1", "2026-11-25T03:00:00Z", tags=["qualified"])]
    store = InMemoryRecount(calls, rows_as_counted(calls))

    def untagged() -> None:
        calls[0].update(tags=[], updated_at=NOW.strftime("%Y-%m-%dT%H:%M:%S.500Z"), version=2)
        for row in store.stored_rows.values():
            row["leads"] -= 1

    store.after_first_read = untagged

    # When the day is recounted
    found = run(store, date(2026, 11, 25), date(2026, 11, 25))

    # Then it holds no lead (the call's, taken back), not one raised from the call as first read
    assert leads(store, "2026-11-25") == 0
    assert found.busy_days == ["2026-11-25"] and store.writes == []


def test_a_call_the_index_still_shows_as_it_was_leaves_its_day_busy_not_raised() -> None:
    # Given a qualified call counted with its lead, then untagged (the consumer took the lead back)
    # at a moment the by-account index still answers its copy from before, written long ago
    calls = [a_call("CA1", "2026-11-25T03:00:00Z", tags=["qualified"])]
    store = InMemoryRecount(calls, rows_as_counted(calls))
    store.index = [dict(calls[0])]
    calls[0].update(tags=[], version=2)
    for row in store.stored_rows.values():
        row["leads"] -= 1

    # When the day is recounted
    found = run(store, date(2026, 11, 25), date(2026, 11, 25))

    # Then the table's newer version makes the day busy: no lead is raised from the stale copy
    assert leads(store, "2026-11-25") == 0
    assert found.busy_days == ["2026-11-25"] and store.writes == []


def test_a_dry_run_says_what_it_would_raise_and_writes_nothing() -> None:
    calls = [a_call("CA1", "2026-11-26T01:00:00Z", tags=["qualified"])]
    rows = as_counted_before_2026_12_01(calls)
    store = InMemoryRecount(calls, rows)

    found = run(store, date(2026, 11, 26), date(2026, 11, 26), dry_run=True)

    assert store.writes == [] and leads(store, "2026-11-26") == 0
    assert found.rows_raised == 7 and found.days[0]["raised"] == {"leads": 1}


def test_a_call_counted_on_its_stamped_zones_day_is_recounted_on_that_day() -> None:
    # Given a call stamped with New York's zone in a Tokyo account: 2026-11-27 23:30 in New York is
    # 2026-11-28 13:30 in Tokyo, and the consumer counted it on the 27th
    calls = [a_call("CA1", "2026-11-28T04:30:00Z", tags=["qualified"], timezone="America/New_York")]
    rows = rows_as_counted(calls)
    assert any("|2026-11-27#" in key for _, key in rows)
    for row in rows.values():
        row.pop("leads")
    store = InMemoryRecount(calls, rows)

    # When the 27th is recounted
    run(store, date(2026, 11, 27), date(2026, 11, 27))

    # Then its row got the lead
    assert leads(store, "2026-11-27") == 1


def test_a_long_range_stops_when_out_of_time_even_mid_day_and_goes_on_from_that_day() -> None:
    # Given 20 days each one lead low (7 short rows a day)
    calls = [a_call(f"CA{i}", f"2026-10-{i + 1:02d}T01:00:00Z", tags=["qualified"]) for i in range(20)]
    store = InMemoryRecount(calls, as_counted_before_2026_12_01(calls))

    # When a recount runs out of time after 10 looks at the clock (one before each raise: in the
    # middle of its second day), then goes on from the day it names
    looks = iter(range(10**6))
    first, next_day = recount.recount(store, ACCOUNT, TZ, date(2026, 10, 1), date(2026, 10, 20), now=NOW,
                                      dry_run=False, out_of_time=lambda: next(looks) >= 10,
                                      zone_unchanged=True)
    assert next_day == date(2026, 10, 2)
    assert first.rows_raised == 10 and [d["day"] for d in first.days] == ["2026-10-01"]
    rest, done = recount.recount(store, ACCOUNT, TZ, next_day, date(2026, 10, 20), now=NOW,
                                 dry_run=False, out_of_time=lambda: False, zone_unchanged=True)

    # Then every day was raised once: the second day's rows raised before the stop were not again
    assert done is None
    assert first.calls + rest.calls == 20 and first.rows_raised + rest.rows_raised == 140
    assert all(leads(store, f"2026-10-{i + 1:02d}") == 1 for i in range(20))
    assert store.stored_rows == rows_as_counted(calls)


def test_a_short_row_holding_another_number_of_calls_is_left_unverified() -> None:
    # Given a call from before the zone stamp, counted on Tokyo's day (2026-11-21 05:00 there), in
    # an account that has since moved to New York (where the call is on 2026-11-20)
    calls = [a_call("CA1", "2026-11-20T20:00:00Z", tags=["qualified"])]
    rows = as_counted_before_2026_12_01(calls)
    assert all("|2026-11-21#" in key for _, key in rows)
    store = InMemoryRecount(calls, rows)

    # When New York's 2026-11-20 and 21 are recounted
    found, _ = recount.recount(store, ACCOUNT, "America/New_York", date(2026, 11, 20), date(2026, 11, 21),
                               now=NOW, dry_run=False, out_of_time=lambda: False, zone_unchanged=True)

    # Then nothing is raised: the rows of New York's day hold no call, so raising them would count
    # the call a second time; they are reported unverified
    assert store.writes == [] and found.rows_raised == 0
    assert found.rows_unverified == 7


def test_the_fields_a_recount_reads_are_all_the_consumer_counts_from() -> None:
    # Given a call with every field the reports count by, and some they do not (a transcript)
    call = a_call("CA1", "2026-11-20T01:00:00Z", tags=["qualified"], stage="won", value=50000,
                  talk_seconds=95, first_time=True, campaign="implant", keyword="インプラント", agent="sato",
                  attribution='{"landing_page": "https://acme.example.jp/implant", "keyword": "k"}',
                  timezone="Asia/Tokyo", transcript='{"text": "..."}')
    # When only the fields the recount reads are kept
    projected = {k: v for k, v in call.items() if k in (*recount.CALL_FIELDS, "started_at")}
    # Then the consumer counts it the same (a field the consumer reads and the recount does not
    # would make the recount see other rows)
    assert "transcript" not in projected
    assert contribution(projected, TZ) == contribution(call, TZ) != {}


def test_days_of_unstamped_calls_in_an_account_that_changed_zone_are_not_raised_without_being_told() -> None:
    # Given three calls from before the zone stamp counted on Tokyo's days, one tagged qualified
    # (counted with no lead), in an account that has since moved to UTC: each UTC day holds as many
    # calls as its Tokyo row, but not the same ones (the qualified call is on UTC's 11-20 and on
    # Tokyo's 11-21)
    calls = [a_call("CA1", "2026-11-19T16:00:00Z"), a_call("CA2", "2026-11-20T16:00:00Z", tags=["qualified"]),
             a_call("CA3", "2026-11-21T16:00:00Z")]
    rows = as_counted_before_2026_12_01(calls)
    rows[(ACCOUNT, "channel|2026-11-21#flyer")]["leads"] = 1  # untagging nothing: Tokyo's day holds the lead
    store = InMemoryRecount(calls, rows)

    # When UTC's days are recounted without saying the zone is unchanged
    found, _ = recount.recount(store, ACCOUNT, "UTC", date(2026, 11, 19), date(2026, 11, 21), now=NOW,
                               dry_run=False, out_of_time=lambda: False)

    # Then no lead is added on UTC's 11-20 (Tokyo's 11-21 row already holds it: that would be two),
    # and the day is named for the operator to decide
    assert store.writes == [] and found.rows_raised == 0
    assert found.unstamped_days == ["2026-11-20"]


def test_days_of_stamped_calls_are_raised_without_being_told() -> None:
    # Given a qualified call stamped with the account's zone, counted with no lead
    calls = [a_call("CA1", "2026-12-02T01:00:00Z", tags=["qualified"], timezone=TZ)]
    store = InMemoryRecount(calls, as_counted_before_2026_12_01(calls))
    # When its day is recounted
    found, _ = recount.recount(store, ACCOUNT, TZ, date(2026, 12, 2), date(2026, 12, 2), now=NOW,
                               dry_run=False, out_of_time=lambda: False)
    # Then it is raised: the stamp says which day it was counted on
    assert leads(store, "2026-12-02") == 1 and found.unstamped_days == []


def test_an_answer_out_of_time_from_the_start_still_finishes_its_first_day_and_moves_on() -> None:
    # Given two days each one lead low, and a recount whose time is up before it begins (reading
    # took the whole budget)
    calls = [a_call(f"CA{i}", f"2026-10-{i + 1:02d}T01:00:00Z", tags=["qualified"]) for i in range(2)]
    store = InMemoryRecount(calls, as_counted_before_2026_12_01(calls))
    found, next_day = recount.recount(store, ACCOUNT, TZ, date(2026, 10, 1), date(2026, 10, 2), now=NOW,
                                      dry_run=False, out_of_time=lambda: True, zone_unchanged=True)
    # Then its first day is raised and the cursor names the next one (the CLI never resends a cursor
    # that did not move)
    assert leads(store, "2026-10-01") == 1 and leads(store, "2026-10-02") == 0
    assert next_day == date(2026, 10, 2)


def test_an_account_whose_stored_config_no_longer_validates_is_a_409_naming_the_account() -> None:
    from pydantic import BaseModel

    from calltrack.errors import Conflict

    class Broken:
        def get(self, account: str) -> Any:
            class Alerts(BaseModel):
                answer_rate_below: float

            return Alerts.model_validate({"answer_rate_below": "seven"})  # raises ValidationError

    try:
        recount._timezone(Broken(), ACCOUNT)
    except Conflict as err:
        assert err.field == "account"
    else:
        raise AssertionError("no 409")


def test_the_calls_versions_are_read_from_the_table_a_hundred_at_a_time() -> None:
    import boto3
    from moto import mock_aws

    from calltrack.call_items import CallItems
    from tests.support.dynamo import create_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
        create_table(client, "calls", ("call_sid", "S"))
        # Given 250 stored calls at versions 1..3
        for i in range(250):
            client.put_item(TableName="calls", Item={"call_sid": {"S": f"CA{i:04d}"},
                                                     "version": {"N": str(i % 3 + 1)}})
        calls = CallItems(client, "calls")
        # When the recount asks for their versions (and one call that is gone)
        got = calls.versions([f"CA{i:04d}" for i in range(250)] + ["CA-gone"])
        # Then each is its version in the table, and the gone call is left out
        assert got == {f"CA{i:04d}": i % 3 + 1 for i in range(250)}
