"""Report API contract on the local stack: roles, tenant isolation, bad input, OpenAPI, items read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import unique_call_sid, unique_number
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call


@pytest.fixture(scope="module")
def acct(local_stack: Any) -> dict[str, Any]:
    number = unique_number()
    account = apply_account(
        local_stack,
        "api",
        name="API clinic",
        numbers=[{"number": number, "channel": "flyer", "campaign": "c", "medium": "offline"}],
    )
    sid = play_call(local_stack, number, datetime(2026, 9, 10, 2, 0, tzinfo=UTC), "answered", 30)
    local_stack.drain()
    return {
        "account": account,
        "sid": sid,
        "tokens": tokens(local_stack, account, "admin", "manager", "marketer"),
    }


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/reports/channels", {"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ("/v1/reports/channels", {"from": "2026-10-02", "to": "2026-10-01"}, "from"),
        ("/v1/reports/channels", {"from": "2024-01-01", "to": "2026-10-01"}, "to"),
        ("/v1/reports/channels", {"from": "2026-10-01", "to": "2026-10-31", "by": "colour"}, "by"),
        ("/v1/reports/heatmap", {"metric": "mood"}, "metric"),
        ("/v1/reports/trend", {"interval": "year"}, "interval"),
        (
            "/v1/reports/trend",
            {"from": "2026-10-01", "to": "2026-10-31", "change_date": "2026-12-01"},
            "change_date",
        ),
        ("/v1/calls.csv", {"to": "tomorrow"}, "to"),
        ("/v1/calls.csv", {"status": "mised"}, "status"),  # a typo: not an empty file
        ("/v1/crm/tagging", {"from": "10/01/2026"}, "from"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    local_stack: Any, acct: dict[str, Any], path: str, params: dict[str, str], field: str
) -> None:
    resp = local_stack.request("GET", path, token=acct["tokens"]["marketer"], params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == field


def test_patch_roles_unknown_call_and_bad_body(local_stack: Any, acct: dict[str, Any]) -> None:
    path = f"/v1/calls/{acct['sid']}"
    assert (
        local_stack.request(
            "PATCH", path, token=acct["tokens"]["marketer"], json={"stage": "won"}
        ).status_code
        == 403
    )
    unknown = local_stack.request(
        "PATCH", f"/v1/calls/{unique_call_sid()}", token=acct["tokens"]["manager"], json={"stage": "won"}
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "call_sid"
    bad = local_stack.request("PATCH", path, token=acct["tokens"]["manager"], json={"stage": "sold"})
    assert bad.status_code == 400 and bad.json()["field"] == "stage"
    ok = local_stack.request(
        "PATCH",
        path,
        token=acct["tokens"]["admin"],
        json={"stage": "won", "value": 1000, "tags": ["vip"], "agent": "sato", "note": "n"},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["stage"] == "won"


def test_tokens_only_see_their_own_account(local_stack: Any, acct: dict[str, Any]) -> None:
    other = apply_account(local_stack, "api-other", name="Other", numbers=[])
    stranger = local_stack.create_token(other, "admin")
    # another account's call is not found, and asking for another account is forbidden
    resp = local_stack.request("PATCH", f"/v1/calls/{acct['sid']}", token=stranger, json={"stage": "lead"})
    assert resp.status_code == 404
    resp = local_stack.request(
        "GET",
        "/v1/reports/channels",
        token=stranger,
        params={"account": acct["account"], "from": "2026-09-01", "to": "2026-09-30"},
    )
    assert resp.status_code == 403
    mine = local_stack.request(
        "GET", "/v1/reports/channels", token=stranger, params={"from": "2026-09-01", "to": "2026-09-30"}
    ).json()
    assert mine["totals"]["calls"] == 0
    assert local_stack.request("GET", "/v1/reports/channels").status_code == 401


def test_spend_is_for_admins_and_marketers_with_a_validated_body(
    local_stack: Any, acct: dict[str, Any]
) -> None:
    body = {"month": "2026-09", "channel": "flyer", "amount": 1500, "currency": "JPY"}
    assert (
        local_stack.request("PUT", "/v1/spend", token=acct["tokens"]["manager"], json=body).status_code == 403
    )
    assert (
        local_stack.request("PUT", "/v1/spend", token=acct["tokens"]["admin"], json=body).status_code == 200
    )
    bad = local_stack.request(
        "PUT", "/v1/spend", token=acct["tokens"]["marketer"], json={**body, "month": "2026-13"}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "month"


def test_operator_reads_a_named_account(local_stack: Any, acct: dict[str, Any]) -> None:
    # Given every change to the call counted (a PATCH above moves it to another agent: a query
    # during that rollup transaction may see one of its two rows, as on DynamoDB)
    local_stack.drain()
    resp = local_stack.request(
        "GET",
        "/v1/reports/agents",
        token=local_stack.admin_token,
        params={"account": acct["account"], "from": "2026-09-01", "to": "2026-09-30"},
    )
    assert resp.status_code == 200
    assert sum(r["calls"] for r in resp.json()["rows"]) == 1


def test_report_cost_is_rollup_rows_not_calls(local_stack: Any, acct: dict[str, Any]) -> None:
    local_stack.drain()
    resp = local_stack.request(
        "GET",
        "/v1/reports/channels",
        token=acct["tokens"]["marketer"],
        params={"from": "2026-09-01", "to": "2026-09-30"},
    )
    # one rollup row (one day x one channel) plus one spend row
    assert resp.headers["X-Calltrack-Items-Read"] == "2"


def test_openapi_describes_every_report_api_route(local_stack: Any) -> None:
    from infra.wiring import WIRING

    resp = local_stack.request("GET", "/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    wired = {
        (r.method, r.path) for r in WIRING.routes if r.function == "report_api" and r.path != "/openapi.json"
    }
    assert wired <= documented, wired - documented
    body = doc["paths"]["/v1/spend"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/SpendIn")


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/v1/calls", {"from", "to", "channel", "status", "agent", "test", "stage", "q", "limit", "cursor",
                       "account"}),
        ("/v1/calls.csv", {"from", "to", "channel", "status", "account"}),
        ("/v1/conversions", {"from", "to", "destination", "status", "account"}),
        ("/v1/reviews/trials", {"from", "to", "account"}),
    ],
)
def test_openapi_names_every_query_parameter_a_route_reads(
    local_stack: Any, acct: dict[str, Any], path: str, names: set[str]
) -> None:
    # Given the report API's document
    doc = local_stack.request("GET", "/openapi.json").json()
    # Then the route's filters are there for a client to find (they were read but undocumented)
    params = {p["name"] for p in doc["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}
    assert names <= params, names - params
    # And they work as documented: a filter narrows, a bad value is a 400 naming it
    token = acct["tokens"]["admin"]
    window = {"from": "2026-09-01", "to": "2026-09-30"}
    if path == "/v1/calls":
        assert len(local_stack.request("GET", path, token=token, params=window).json()["items"]) == 1
        none = local_stack.request("GET", path, token=token, params={**window, "channel": "radio"})
        assert none.json()["items"] == []
        bad = local_stack.request("GET", path, token=token, params={**window, "limit": "many"})
        assert bad.status_code == 400 and bad.json()["field"] == "limit"
    if path == "/v1/conversions":
        bad = local_stack.request("GET", path, token=token, params={**window, "destination": "tiktok"})
        assert bad.status_code == 400 and bad.json()["field"] == "destination"
