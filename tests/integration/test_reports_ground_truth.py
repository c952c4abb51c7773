"""A generated month of calls through the real webhooks: every report figure equals a direct count.

Calls enter through signed Twilio webhooks (voice, dial-status, call-status) at chosen instants
(the local gateway's clock header), managers move them through the funnel with PATCH, a marketer
sets spend, and the stream records are replayed into the rollup consumer a second time. Then the
channel/campaign/tracking-number reports, heatmap, agents and trend must equal what a direct count
over the calls table says, rows must add up to totals, and the calls CSV must list every call.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import unique_call_sid, unique_number
from tests.support.stack import apply_account
from tests.support.twilio import play_call

TZ = ZoneInfo("Asia/Tokyo")
MONTH_FROM, MONTH_TO = "2026-10-01", "2026-10-31"
COUNTERS = (
    "calls",
    "answered",
    "missed",
    "first_time_callers",
    "talk_seconds",
    "leads",
    "opportunities",
    "won",
    "won_value",
)


def replay_stream_into_rollups(stack: Any, call_sids: set[str]) -> int:
    """Hand every stream record of these calls to the rollup consumer again (at-least-once)."""
    from report.rollup_consumer import handler

    ddb, streams = stack.stack.client("dynamodb"), stack.stack.client("dynamodbstreams")
    from calltrack.settings import get_settings

    arn = ddb.describe_table(TableName=get_settings().table_name("calls"))["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it, Limit=1000)
            records += [r for r in page["Records"] if r["dynamodb"]["Keys"]["call_sid"]["S"] in call_sids]
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    for record in records:  # boto3 gives datetimes; Lambda gives epoch numbers
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
    for start in range(0, len(records), 100):
        assert handler({"Records": records[start : start + 100]}, None) == {"batchItemFailures": []}
    return len(records)


def direct_calls(stack: Any, account: str) -> list[dict[str, Any]]:
    from calltrack.call_items import call_from_item as from_item
    from calltrack.settings import get_settings

    ddb = stack.stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": get_settings().table_name("calls"),
        "FilterExpression": "account = :a",
        "ExpressionAttributeValues": {":a": {"S": account}},
    }
    while True:
        page = ddb.scan(**kwargs)
        items += [from_item(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def truth_counters(calls: list[dict[str, Any]]) -> dict[str, float]:
    stages = [c.get("stage") for c in calls]
    return {
        "calls": len(calls),
        "answered": sum(c["status"] == "answered" for c in calls),
        "missed": sum(c["status"] in ("missed", "busy", "failed", "canceled") for c in calls),
        "first_time_callers": sum(bool(c.get("first_time")) for c in calls),
        "talk_seconds": sum(c.get("talk_seconds") or 0 for c in calls),
        "leads": sum(s in ("lead", "opportunity", "won", "lost") for s in stages),
        "opportunities": sum(s in ("opportunity", "won") for s in stages),
        "won": sum(s == "won" for s in stages),
        "won_value": sum((c.get("value") or 0) for c in calls if c.get("stage") == "won"),
    }


@pytest.fixture(scope="module")
def month(local_stack: Any) -> dict[str, Any]:
    rng = random.Random(20261001)
    numbers = {unique_number(): ch for ch in ("flyer", "newspaper", "radio")}
    campaigns = {"flyer": "autumn-posting", "newspaper": "orikomi-10", "radio": "fm-q4"}
    account = apply_account(
        local_stack,
        "gt",
        name="Ground truth clinic",
        numbers=[
            {"number": n, "channel": ch, "campaign": campaigns[ch], "medium": "offline"}
            for n, ch in numbers.items()
        ],
    )
    manager = local_stack.create_token(account, "manager")
    marketer = local_stack.create_token(account, "marketer")
    callers = [unique_number("+8190") for _ in range(25)]
    start = datetime(2026, 10, 1, tzinfo=TZ)
    moments = sorted(start + timedelta(seconds=rng.randrange(31 * 86400)) for _ in range(70))
    sids: list[str] = []
    placed: list[dict[str, Any]] = []
    for at in moments:
        outcome = rng.choices(["answered", "no-answer", "busy"], weights=[7, 2, 1])[0]
        talk = rng.randrange(20, 600) if outcome == "answered" else 0
        call = {
            "call_sid": unique_call_sid(),
            "caller": rng.choice(callers),
            "number": rng.choice(list(numbers)),
            "at": at.astimezone(UTC),
            "outcome": outcome,
            "talk": talk,
        }
        play_call(local_stack, **call)
        placed.append(call)
        sids.append(call["call_sid"])
    local_stack.drain()
    # Twilio retries: every webhook of some calls is delivered again after the rollups counted them
    for call in rng.sample(placed, 6):
        play_call(local_stack, **call)
    local_stack.drain()
    # managers move calls through the funnel, some corrected backwards, and name agents
    for sid in rng.sample(sids, 30):
        stage = rng.choice(["lead", "opportunity", "won", "lost"])
        body: dict[str, Any] = {"stage": stage, "agent": rng.choice(["sato", "tanaka"])}
        if stage == "won":
            body["value"] = rng.randrange(1, 50) * 1000
        resp = local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager, json=body)
        assert resp.status_code == 200, resp.text
    for sid in rng.sample(sids, 5):
        resp = local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager, json={"stage": "lead"})
        assert resp.status_code == 200, resp.text
    for channel, amount in (("flyer", 62000), ("radio", 31000), ("tv", 10000)):
        resp = local_stack.request(
            "PUT",
            "/v1/spend",
            token=marketer,
            json={"month": "2026-10", "channel": channel, "amount": amount},
        )
        assert resp.status_code == 200, resp.text
    local_stack.drain()
    replayed = replay_stream_into_rollups(local_stack, set(sids))
    assert replayed >= len(sids)
    return {
        "account": account,
        "marketer": marketer,
        "manager": manager,
        "sids": sids,
        "calls": direct_calls(local_stack, account),
        "numbers": numbers,
    }


def test_the_generated_month_is_what_the_calls_table_holds(month: dict[str, Any]) -> None:
    calls = month["calls"]
    assert len(calls) == 70
    assert {c["status"] for c in calls} <= {"answered", "missed", "busy"}
    assert any(c.get("stage") == "won" for c in calls)


@pytest.mark.parametrize("by", ["channel", "campaign", "tracking_number"])
def test_channel_report_equals_a_direct_count(local_stack: Any, month: dict[str, Any], by: str) -> None:
    resp = local_stack.request(
        "GET",
        "/v1/reports/channels",
        token=month["marketer"],
        params={"from": MONTH_FROM, "to": MONTH_TO, "by": by},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in month["calls"]:
        groups[call.get(by) or "(none)"].append(call)
    rows = {r["key"]: r for r in body["rows"]}
    for key, calls in groups.items():
        expected = truth_counters(calls)
        assert {k: rows[key][k] for k in COUNTERS} == expected, key
    assert {k: body["totals"][k] for k in COUNTERS} == truth_counters(month["calls"])
    for counter in COUNTERS:
        assert sum(r[counter] for r in body["rows"]) == body["totals"][counter]
    assert int(resp.headers["X-Calltrack-Items-Read"]) > 0


def test_spend_cpa_and_romi_follow_the_spend_table(local_stack: Any, month: dict[str, Any]) -> None:
    body = local_stack.request(
        "GET", "/v1/reports/channels", token=month["marketer"], params={"from": MONTH_FROM, "to": MONTH_TO}
    ).json()
    rows = {r["key"]: r for r in body["rows"]}
    assert rows["flyer"]["spend"] == 62000 and rows["radio"]["spend"] == 31000
    assert rows["tv"]["spend"] == 10000 and rows["tv"]["calls"] == 0  # spend without calls is still a row
    assert rows["newspaper"]["spend"] == 0
    assert body["totals"]["spend"] == 103000
    flyer = rows["flyer"]
    assert flyer["cpa"] == (round(62000 / flyer["leads"], 2) if flyer["leads"] else None)
    assert flyer["romi"] == round((flyer["won_value"] - 62000) / 62000, 4)


def test_heatmap_agents_and_trend_equal_direct_counts(local_stack: Any, month: dict[str, Any]) -> None:
    params = {"from": MONTH_FROM, "to": MONTH_TO}
    calls = month["calls"]
    local = [datetime.fromisoformat(c["started_at"].replace("Z", "+00:00")).astimezone(TZ) for c in calls]
    heat = local_stack.request("GET", "/v1/reports/heatmap", token=month["marketer"], params=params).json()
    expected = Counter((t.weekday(), t.hour) for t in local)
    assert {(d, h): heat["grid"][d][h] for d in range(7) for h in range(24) if heat["grid"][d][h]} == expected

    agents = local_stack.request("GET", "/v1/reports/agents", token=month["marketer"], params=params).json()
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        by_agent[call.get("agent") or "(none)"].append(call)
    for row in agents["rows"]:
        truth = truth_counters(by_agent[row["agent"]])
        assert (row["calls"], row["answered"], row["won"]) == (
            truth["calls"],
            truth["answered"],
            truth["won"],
        )
        assert row["aht_seconds"] == (
            round(truth["talk_seconds"] / truth["answered"], 1) if truth["answered"] else None
        )

    trend = local_stack.request(
        "GET",
        "/v1/reports/trend",
        token=month["marketer"],
        params={**params, "interval": "day", "channel": "flyer", "change_date": "2026-10-15"},
    ).json()
    per_day = Counter(
        t.date().isoformat() for t, c in zip(local, calls, strict=True) if c["channel"] == "flyer"
    )
    assert {p["period"]: p["calls"] for p in trend["points"] if p["calls"]} == per_day
    assert len(trend["points"]) == 31
    assert trend["before"]["calls"] + trend["after"]["calls"] == sum(per_day.values())


def test_calls_csv_lists_every_call_with_masked_callers_for_marketers(
    local_stack: Any, month: dict[str, Any]
) -> None:
    resp = local_stack.request(
        "GET", "/v1/calls.csv", token=month["marketer"], params={"from": MONTH_FROM, "to": MONTH_TO}
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    text = resp.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert {r["call_sid"] for r in rows} == set(month["sids"])
    assert all("*" in r["caller"] for r in rows)
    manager_csv = local_stack.request(
        "GET", "/v1/calls.csv", token=month["manager"], params={"from": MONTH_FROM, "to": MONTH_TO}
    ).content.decode()
    assert "*" not in list(csv.DictReader(io.StringIO(manager_csv.lstrip("\ufeff"))))[0]["caller"]
    channels_csv = local_stack.request(
        "GET",
        "/v1/reports/channels.csv",
        token=month["marketer"],
        params={"from": MONTH_FROM, "to": MONTH_TO},
    )
    assert channels_csv.content.decode().startswith("\ufeffkey,calls,answered")
