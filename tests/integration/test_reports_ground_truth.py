"""A generated month of calls through the real webhooks: every report figure equals a direct count.

Calls enter through signed Twilio webhooks (voice, dial-status, call-status) at chosen instants
(the local gateway's clock header), managers move them through the funnel with PATCH, and a
marketer sets spend. Meanwhile the rollup consumer meets Lambda's redelivery: some of its
transactions fail before writing and some after (the answer lost), so the stream is delivered
again from the record it reported, and at the end every batch it was handed is delivered again
whole (a batch retried after a timeout). Then the
channel/campaign/tracking-number reports, heatmap, agents and trend must equal what a direct count
over the calls table says, rows must add up to totals, and the calls CSV must list every call.
"""

from __future__ import annotations

import copy
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


class RollupRedelivery:
    """Lambda's at-least-once delivery of the calls stream to the in-process rollup consumer: every
    ``every``-th transaction fails, alternately before writing ("down") and after writing ("lost":
    committed, but the function fails as on a timeout), so the local event source mapping delivers
    the batch again from the record the consumer reported; every batch handed over is kept, to be
    delivered again whole (``redeliver``)."""

    def __init__(self, stack: Any, every: int = 4) -> None:
        from report.rollup_consumer import DynamoRollupStore

        self.stack, self.every = stack, every
        self.batches: list[dict[str, Any]] = []
        self.reported: list[str] = []  # the records the consumer reported failed
        self.failed = Counter[str]()
        self.commits = 0
        self._store_commit = DynamoRollupStore.commit
        self._invoke = stack.stack.invoker.invoke

    def __enter__(self) -> RollupRedelivery:
        from report.rollup_consumer import DynamoRollupStore

        outer, commit = self, self._store_commit

        def failing_commit(store: Any, seqs: list[str], rows: Any) -> bool:
            outer.commits += 1
            if outer.commits % outer.every == 0:
                mode = "lost" if (outer.commits // outer.every) % 2 else "down"
                if mode == "lost":
                    commit(store, seqs, rows)
                outer.failed[mode] += 1
                raise RuntimeError(f"injected: transaction {mode}")
            return commit(store, seqs, rows)

        def invoke(function_name: str, event: Any, **kwargs: Any) -> Any:
            if function_name != "rollup":
                return self._invoke(function_name, event, **kwargs)
            self.batches.append(copy.deepcopy(event))
            result = self._invoke(function_name, event, **kwargs)
            self.reported += [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])]
            return result

        DynamoRollupStore.commit = failing_commit  # type: ignore[method-assign]
        self.stack.stack.invoker.invoke = invoke
        return self

    def __exit__(self, *exc: Any) -> None:
        from report.rollup_consumer import DynamoRollupStore

        DynamoRollupStore.commit = self._store_commit  # type: ignore[method-assign]
        self.stack.stack.invoker.invoke = self._invoke

    def redeliver(self) -> int:
        """Every batch the consumer was handed, again (after ``__exit__``: no failures now)."""
        from report.rollup_consumer import handler

        for event in self.batches:
            assert handler(event, None) == {"batchItemFailures": []}
        return len(self.batches)


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
    with RollupRedelivery(local_stack) as redelivery:
        placed, sids = _play_the_month(local_stack, rng, numbers, callers, start, manager, marketer)
    # the consumer met failures before and after writing, and was handed the stream again from the
    # records it reported; then every batch it was handed comes again whole
    assert redelivery.failed["down"] >= 2 and redelivery.failed["lost"] >= 2, redelivery.failed
    starts = [b["Records"][0]["dynamodb"]["SequenceNumber"] for b in redelivery.batches]
    assert len(redelivery.reported) == sum(redelivery.failed.values())
    assert all(seq in starts for seq in redelivery.reported)
    assert redelivery.redeliver() == len(redelivery.batches)
    return {
        "account": account,
        "marketer": marketer,
        "manager": manager,
        "sids": sids,
        "calls": direct_calls(local_stack, account),
        "numbers": numbers,
    }


def _play_the_month(
    local_stack: Any, rng: random.Random, numbers: dict[str, str], callers: list[str],
    start: datetime, manager: str, marketer: str,
) -> tuple[list[dict[str, Any]], list[str]]:
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
    return placed, sids


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
    assert flyer["cpa"] == (round(62000 / flyer["leads"]) if flyer["leads"] else None)  # yen: no decimals
    assert body["currency"] == "JPY"
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
