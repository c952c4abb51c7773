"""The daily QuickSight export on the local stack: yesterday's calls per account, masked, once per day."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

from tests.support import unique_call_sid, unique_number
from tests.support.accounts import account_config
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call


def test_daily_export_writes_yesterdays_calls_once_with_a_manifest(local_stack: Any) -> None:
    from calltrack.settings import get_settings

    number = unique_number()
    account = apply_account(
        local_stack,
        "exp",
        name="Export",
        numbers=[{"number": number, "channel": "radio", "campaign": "fm", "medium": "offline"}],
    )
    caller = unique_number("+8190")
    inside = [unique_call_sid(), unique_call_sid()]
    # 2026-10-05 00:10 and 23:50 JST are that day; 2026-10-06 00:10 JST is not
    for sid, when, outcome, talk in [
        (inside[0], datetime(2026, 10, 4, 15, 10, tzinfo=UTC), "answered", 40),
        (inside[1], datetime(2026, 10, 5, 14, 50, tzinfo=UTC), "busy", 0),
        (unique_call_sid(), datetime(2026, 10, 5, 15, 10, tzinfo=UTC), "answered", 10),
    ]:
        play_call(local_stack, number, when, outcome, talk, call_sid=sid, caller=caller)
    at = "2026-10-05T15:30:00Z"  # the schedule: 00:30 JST on the 6th

    first = local_stack.run_job("daily-calls-export", at)["result"]
    mine = [e for e in first["exports"] if e["account"] == account]
    assert mine == [
        {
            "account": account,
            "date": "2026-10-05",
            "key": f"calls/account={account}/date=2026-10-05/calls.csv",
            "status": "written",
            "rows": 2,
        }
    ]
    s3 = local_stack.stack.client("s3")
    bucket = get_settings().exports_bucket
    text = s3.get_object(Bucket=bucket, Key=mine[0]["key"])["Body"].read().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["call_sid"] for r in rows} == set(inside)
    # every account's files feed one QuickSight dataset: each row names its account, first
    assert text.splitlines()[0].startswith("account,call_sid,")
    assert [r["account"] for r in rows] == [account, account]
    assert all(r["caller"].endswith(caller[-4:]) and caller not in r["caller"] for r in rows)
    assert rows[0]["started_at"].endswith("Z")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="exports/quicksight-manifest.json")["Body"].read())
    assert manifest["fileLocations"][0]["URIPrefixes"] == [f"s3://{bucket}/calls/"]

    again = local_stack.run_job("daily-calls-export", at)["result"]
    assert [e["status"] for e in again["exports"] if e["account"] == account] == ["exists"]
    forced = local_stack.run_job("daily-calls-export", at, force=True)["result"]
    assert [e["status"] for e in forced["exports"] if e["account"] == account] == ["written"]


def test_a_stage_set_after_its_day_was_exported_reaches_that_days_file(local_stack: Any) -> None:
    from calltrack.settings import get_settings

    # Given a call on 2026-08-20 (JST), exported the next morning without a stage
    number = unique_number()
    account = apply_account(local_stack, "late", numbers=[{"number": number, "channel": "radio"}])
    sid = unique_call_sid()
    play_call(local_stack, number, datetime(2026, 8, 20, 3, 0, tzinfo=UTC), "answered", 60, call_sid=sid)
    first = local_stack.run_job("daily-calls-export", "2026-08-20T15:30:00Z")["result"]
    [written] = [e for e in first["exports"] if e["account"] == account]
    assert written["status"] == "written"

    # When a manager marks it won three days later, and the next nightly runs come
    manager = tokens(local_stack, account, "manager")["manager"]
    won = {"stage": "won", "value": 80000}
    moved = local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager, json=won)
    assert moved.status_code == 200, moved.text
    local_stack.drain()  # what the stage change sets off (conversions, CRM) writes the call too
    later = local_stack.run_job("daily-calls-export", "2026-08-23T15:30:00Z")["result"]
    # a file read within SNAPSHOT_SKEW of a change (to the second) is written once more
    from call_records.export import SNAPSHOT_SKEW

    time.sleep(SNAPSHOT_SKEW.total_seconds() + 1.1)
    local_stack.run_job("daily-calls-export", "2026-08-24T15:30:00Z")
    again = local_stack.run_job("daily-calls-export", "2026-08-25T15:30:00Z")["result"]

    # Then the 20th's file is rewritten, then left alone, and QuickSight reads the won value (it
    # kept "no stage")
    refreshed = [e for e in later["exports"] if e["account"] == account and e["status"] == "refreshed"]
    assert [e["date"] for e in refreshed] == ["2026-08-20"]
    assert [e for e in again["exports"] if e["account"] == account and e["status"] == "refreshed"] == []
    body = local_stack.stack.client("s3").get_object(Bucket=get_settings().exports_bucket, Key=written["key"])
    [row] = list(csv.DictReader(io.StringIO(body["Body"].read().decode("utf-8"))))
    assert (row["call_sid"], row["stage"], float(row["value"])) == (sid, "won", 80000.0)


def test_a_day_whose_run_was_missed_is_exported_by_the_next_run(local_stack: Any) -> None:
    from calltrack.settings import get_settings

    # Given an account exported on the morning of 2026-09-11 (its 10th written), with a call on the 11th
    number = unique_number()
    account = apply_account(local_stack, "gap", numbers=[{"number": number, "channel": "radio"}])
    sid = unique_call_sid()
    play_call(local_stack, number, datetime(2026, 9, 11, 3, 0, tzinfo=UTC), call_sid=sid)
    first = local_stack.run_job("daily-calls-export", "2026-09-10T15:30:00Z")["result"]
    assert [e["date"] for e in first["exports"] if e["account"] == account] == ["2026-09-10"]

    # When the run of the 12th never happens, and the run of the 13th does
    later = local_stack.run_job("daily-calls-export", "2026-09-12T15:30:00Z")["result"]

    # Then the 13th's run writes the missed 11th (with its call) before its own day, the 12th
    mine = [(e["date"], e["status"]) for e in later["exports"] if e["account"] == account]
    assert mine == [("2026-09-11", "written"), ("2026-09-12", "written")]
    s3 = local_stack.stack.client("s3")
    key = f"calls/account={account}/date=2026-09-11/calls.csv"
    text = s3.get_object(Bucket=get_settings().exports_bucket, Key=key)["Body"].read().decode("utf-8")
    assert sid in text


def test_a_days_file_is_deleted_once_all_its_calls_passed_the_accounts_retention(local_stack: Any) -> None:
    from calltrack.settings import get_settings

    # Given an account keeping its calls 30 days, with calls on 2026-07-01 and 2026-07-10 (JST),
    # each day exported the next morning
    number = unique_number()
    numbers = [{"number": number, "channel": "radio"}]
    account = apply_account(local_stack, "keep", numbers=numbers, retention={"calls_days": 30})
    for when in (datetime(2026, 7, 1, 3, 0, tzinfo=UTC), datetime(2026, 7, 10, 3, 0, tzinfo=UTC)):
        play_call(local_stack, number, when, call_sid=unique_call_sid())
    local_stack.run_job("daily-calls-export", "2026-07-01T15:30:00Z")
    local_stack.run_job("daily-calls-export", "2026-07-10T15:30:00Z")
    s3 = local_stack.stack.client("s3")
    bucket = get_settings().exports_bucket

    def files() -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"calls/account={account}/").get("Contents", [])
        return [o["Key"].split("/")[2] for o in listed]

    assert files() == ["date=2026-07-01", "date=2026-07-10"]

    # When the run of 2026-08-02 00:30 JST comes (July 1's calls expired on July 31)
    run = local_stack.run_job("daily-calls-export", "2026-08-01T15:30:00Z")["result"]

    # Then July 1's file is deleted with its calls' retention and July 10's is kept
    mine = [e for e in run["exports"] if e["account"] == account]
    assert {"account": account, "status": "expired", "files": 1, "days": ["2026-07-01"]} in mine
    assert files() == ["date=2026-07-10", "date=2026-08-01"]
    # And the next run neither writes it again as missed nor refreshes it
    local_stack.run_job("daily-calls-export", "2026-08-02T15:30:00Z")
    assert files() == ["date=2026-07-10", "date=2026-08-01", "date=2026-08-02"]

    # When the account then keeps its calls 3 days instead: the calls already made keep their 30
    local_stack.apply(account_config(account, numbers=numbers, retention={"calls_days": 3}))
    local_stack.run_job("daily-calls-export", "2026-08-03T15:30:00Z")
    # Then July 10's file stays while its call does (until August 9), and goes after
    assert "date=2026-07-10" in files()
    local_stack.run_job("daily-calls-export", "2026-08-09T15:30:00Z")
    assert "date=2026-07-10" not in files()
