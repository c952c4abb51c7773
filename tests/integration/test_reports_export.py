"""The daily QuickSight export on the local stack: yesterday's calls per account, masked, once per day."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from tests.integration.test_reports_ground_truth import place_call
from tests.support import unique_account, unique_call_sid, unique_number


def test_daily_export_writes_yesterdays_calls_once_with_a_manifest(local_stack: Any) -> None:
    from calltrack.settings import get_settings

    account = unique_account("exp")
    number = unique_number()
    local_stack.apply(
        {
            "account": account,
            "name": "Export",
            "timezone": "Asia/Tokyo",
            "forward_to": "+81312345678",
            "numbers": [{"number": number, "channel": "radio", "campaign": "fm", "medium": "offline"}],
        }
    )
    caller = unique_number("+8190")
    inside = [unique_call_sid(), unique_call_sid()]
    # 2026-10-05 00:10 and 23:50 JST are that day; 2026-10-06 00:10 JST is not
    place_call(
        local_stack, inside[0], caller, number, datetime(2026, 10, 4, 15, 10, tzinfo=UTC), "answered", 40
    )
    place_call(local_stack, inside[1], caller, number, datetime(2026, 10, 5, 14, 50, tzinfo=UTC), "busy", 0)
    place_call(
        local_stack,
        unique_call_sid(),
        caller,
        number,
        datetime(2026, 10, 5, 15, 10, tzinfo=UTC),
        "answered",
        10,
    )
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
