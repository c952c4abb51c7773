"""Reads the demo's results back from the product's own API (every figure printed comes from here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from calltrack_cli.demo.player import DemoError, _check
from calltrack_cli.demo.scenario import Scenario
from calltrack_cli.local.client import StackClient


@dataclass
class Results:
    month_from: str
    month_to: str
    channels: dict[str, Any]
    keywords: dict[str, Any]
    heatmap: dict[str, Any]
    tagging: dict[str, Any]
    review: dict[str, Any]
    alerts: list[dict[str, Any]]
    calls: dict[str, dict[str, Any]]  # call_sid -> CALL (manager view)
    accuracy: dict[str, Any] = field(default_factory=dict)
    recording_url: str | None = None
    api_url: str = ""
    trials: dict[str, Any] = field(default_factory=dict)  # GET /v1/reviews/trials
    rule_hits: dict[str, int] = field(default_factory=dict)  # rule -> calls it hit (from the calls)
    conversions: dict[str, dict[str, int]] = field(default_factory=dict)  # destination -> status -> count
    console_users: list[tuple[str, str]] = field(default_factory=list)  # (email, role) of the demo


def _get(client: StackClient, path: str, token: str, **params: Any) -> Any:
    return _check(client.request("GET", path, token=token, params=params), f"GET {path}").json()


def list_calls(client: StackClient, token: str, start: date, end: date) -> dict[str, dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(), "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = _get(client, "/v1/calls", token, **params)
        for item in page["items"]:
            calls[item["call_sid"]] = item
        cursor = page.get("next_cursor")
        if not cursor:
            return calls


def accuracy(scenario: Scenario, calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compare the product's attribution with the simulation's ground truth, call by call."""
    right = 0
    wrong: list[str] = []
    for sim in scenario.calls:
        got = calls.get(sim.call_sid)
        truth = sim.truth
        ok = got is not None and all(got.get(k) == v for k, v in truth.items() if v is not None)
        right += ok
        if not ok:
            wrong.append(sim.call_sid)
    total = len(scenario.calls)
    return {"calls": total, "correct": right, "rate": right / total if total else 1.0, "wrong": wrong[:10]}


def conversion_counts(client: StackClient, token: str, start: date, end: date) -> dict[str, dict[str, int]]:
    """Conversions of the period per destination and status, from GET /v1/conversions."""
    span = {"from": start.isoformat(), "to": end.isoformat()}
    items = _get(client, "/v1/conversions", token, **span)["items"]
    counts: dict[str, dict[str, int]] = {}
    for item in items:
        by_status = counts.setdefault(item["destination"], {})
        by_status[item["status"]] = by_status.get(item["status"], 0) + 1
    return counts


def collect(
    client: StackClient,
    scenario: Scenario,
    *,
    manager: str,
    marketer: str,
    outbox: list[dict[str, Any]],
    review_month: str,
) -> Results:
    end = scenario.end
    month_start = end.replace(day=1)
    rng = {"from": month_start.isoformat(), "to": end.isoformat()}
    channels = _get(client, "/v1/reports/channels", marketer, by="channel", **rng)
    keywords = _get(client, "/v1/reports/channels", marketer, by="keyword", **rng)
    heatmap = _get(client, "/v1/reports/heatmap", marketer, metric="missed", **rng)
    tagging = _get(client, "/v1/crm/tagging", manager, **rng)
    review = _get(client, f"/v1/reviews/{review_month}", manager)
    calls = list_calls(client, manager, scenario.start, end + timedelta(days=1))
    results = Results(
        month_from=rng["from"],
        month_to=rng["to"],
        channels=channels,
        keywords=keywords,
        heatmap=heatmap,
        tagging=tagging,
        review=review,
        alerts=[m for m in outbox if scenario.account in str(m)],
        calls=calls,
        api_url=client.url,
    )
    results.accuracy = accuracy(scenario, calls)
    last_30_days = {"from": (end - timedelta(days=29)).isoformat(), "to": end.isoformat()}
    results.trials = _get(client, "/v1/reviews/trials", manager, **last_30_days)
    for call in calls.values():
        for rule in call.get("rule_hits") or {}:
            results.rule_hits[rule] = results.rule_hits.get(rule, 0) + 1
    results.conversions = conversion_counts(client, marketer, scenario.start, end)
    recorded = next((c for c in calls.values() if (c.get("recording") or {}).get("status") == "stored"), None)
    if recorded:
        resp = client.request("GET", f"/v1/calls/{recorded['call_sid']}/recording", token=manager)
        if resp.status_code == 200:
            results.recording_url = resp.json().get("url")
    if not calls:
        raise DemoError("the calls API returned no calls for the simulated period")
    return results
