"""Issue 24's small item: rollup rows an older consumer undercounted, repaired by a recount.

On the running local stack (real handlers over HTTP, the calls stream into the real rollup
consumer): a call tagged ``qualified`` whose rows were counted before 2026-12-01 (no lead), then
untagged, leaves its day -1 lead in the channel report; ``POST /v1/reports/recount`` (and
``calltrack rollups recount``) brings it back to what the call adds up to, leaving a day with a
fresh change for later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calltrack_cli.local.gateway import CLOCK_HEADER
from tests.support import unique_number
from tests.support.cli import run_cli
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call

DAY = "2026-11-20"


def _rollups_table() -> str:
    from calltrack.settings import get_settings

    return get_settings().table_name("rollups")


def channel_leads(stack: Any, account: str, token: str) -> int:
    resp = stack.request("GET", "/v1/reports/channels", token=token,
                         params={"account": account, "from": DAY, "to": DAY})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["totals"]["leads"])


def as_an_older_consumer_counted(stack: Any, account: str) -> int:
    """Take the lead back from every rollup row of the account's day (the consumer before
    2026-12-01 counted none for a call tagged qualified); -> the rows changed."""
    db = stack.stack.client("dynamodb")
    rows = [i for i in db.scan(TableName=_rollups_table())["Items"]
            if i["pk"]["S"].startswith(f"{account}#") and i["sk"]["S"].startswith(f"{DAY}#")]
    for item in rows:
        db.update_item(TableName=_rollups_table(), Key={"pk": item["pk"], "sk": item["sk"]},
                       UpdateExpression="ADD leads :m", ExpressionAttributeValues={":m": {"N": "-1"}})
    return len(rows)


@pytest.fixture()
def untagged_day(local_stack: Any) -> dict[str, Any]:
    """An account whose one call of DAY was tagged qualified under the old rule, then untagged."""
    number = unique_number()
    account = apply_account(local_stack, "recount", name="Recount clinic",
                            numbers=[{"number": number, "channel": "flyer", "medium": "offline"}])
    toks = tokens(local_stack, account, "admin", "marketer")
    sid = play_call(local_stack, number, datetime(2026, 11, 20, 2, 0, tzinfo=UTC), "answered", 60)
    tagged = local_stack.request("PATCH", f"/v1/calls/{sid}", token=toks["admin"],
                                 json={"tags": ["qualified"]})
    assert tagged.status_code == 200, tagged.text
    local_stack.drain()
    assert as_an_older_consumer_counted(local_stack, account) == 7  # one row per dimension
    untagged = local_stack.request("PATCH", f"/v1/calls/{sid}", token=toks["admin"], json={"tags": []})
    assert untagged.status_code == 200, untagged.text
    local_stack.drain()
    return {"account": account, "tokens": toks, "sid": sid}


def test_a_day_left_one_lead_low_is_recounted_to_its_calls(
    local_stack: Any, untagged_day: dict[str, Any]
) -> None:
    # Given the day's report shows -1 lead (a lead taken back that was never counted)
    account, admin = untagged_day["account"], untagged_day["tokens"]["admin"]
    assert channel_leads(local_stack, account, admin) == -1

    # When an account admin asks, they are refused: only the operator sees the alarms that make
    # a recount safe
    body = {"account": account, "from": DAY, "to": DAY}
    refused = local_stack.request("POST", "/v1/reports/recount", token=admin, json=body)
    assert refused.status_code == 403, refused.text

    # When the operator recounts the day right away
    operator = local_stack.admin_token
    now = local_stack.request("POST", "/v1/reports/recount", token=operator, json=body)

    # Then the day is busy (the untagging was just written) and nothing changed
    assert now.status_code == 200, now.text
    assert now.json()["busy_days"] == [DAY] and now.json()["rows_raised"] == 0
    assert channel_leads(local_stack, account, admin) == -1

    # When it is recounted 15 minutes later, first as a dry run
    later = {CLOCK_HEADER: (datetime.now(UTC) + timedelta(minutes=15)).isoformat()}
    dry = local_stack.request("POST", "/v1/reports/recount", token=operator,
                              json={**body, "dry_run": True}, headers=later)
    assert dry.status_code == 200, dry.text
    assert dry.json()["rows_raised"] == 7 and channel_leads(local_stack, account, admin) == -1
    done = local_stack.request("POST", "/v1/reports/recount", token=operator, json=body, headers=later)

    # Then every row of the day is raised by one lead and the report shows none (not -1)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["account"], answer["calls"], answer["rows_raised"]) == (account, 1, 7)
    assert (answer["busy_days"], answer["rows_unverified"]) == ([], 0)
    assert answer["days"] == [
        {"day": DAY, "calls": 1, "busy": False, "rows_raised": 7, "raised": {"leads": 1}}
    ]
    assert answer["next_cursor"] is None
    assert channel_leads(local_stack, account, admin) == 0

    # And a second recount finds nothing to raise
    again = local_stack.request("POST", "/v1/reports/recount", token=operator, json=body, headers=later)
    assert again.json()["rows_raised"] == 0


def test_calltrack_rollups_recount_raises_the_day_and_names_busy_days(
    local_stack: Any, untagged_day: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from report import recount

    account, toks = untagged_day["account"], untagged_day["tokens"]
    monkeypatch.setenv("CALLTRACK_URL", local_stack.url)

    # When the account's admin tries, they are refused (exit 2)
    refused = run_cli("rollups", "recount", "--from", DAY, "--to", DAY, "--token", toks["admin"])
    assert refused.exit_code == 2, refused.output
    assert "operator" in refused.output

    # When the operator recounts right after the untagging, the day is named busy and left as it is
    args = ("--from", DAY, "--to", DAY, "--account", account, "--token", local_stack.admin_token)
    busy = run_cli("rollups", "recount", *args)
    assert busy.exit_code == 0, busy.output
    assert "busy, left as they are" in busy.stdout and DAY in busy.stdout
    assert channel_leads(local_stack, account, toks["admin"]) == -1

    # When the quiet time has passed (shortened here), the admin recounts again
    monkeypatch.setattr(recount, "QUIET_S", 0)
    done = run_cli("rollups", "recount", *args)

    # Then the day is raised and the report shows no lead
    assert done.exit_code == 0, done.output
    assert f"{DAY}: raised 7 rows (leads +1)" in done.stdout
    assert f"{account}: raised 7 rows from 1 stored call" in done.stdout
    assert channel_leads(local_stack, account, toks["admin"]) == 0


def test_a_recount_with_a_bad_day_or_cursor_is_a_400_naming_it(local_stack: Any) -> None:
    account = apply_account(local_stack, "recount-bad", name="Recount clinic")
    for body, field in (
        ({"from": "2026-02-30"}, "from"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
        ({"from": "2026-11-01", "to": "2026-11-30", "cursor": "2026-12-09"}, "cursor"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": DAY, "dry_run": "maybe"}, "dry_run"),
    ):
        resp = local_stack.request("POST", "/v1/reports/recount", token=local_stack.admin_token,
                                   json={"account": account, **body})
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["field"] == field, (body, resp.json())


def test_rollups_recount_help_explains_the_command() -> None:
    result = run_cli("rollups", "recount", "--help")
    assert result.exit_code == 0
    for word in ("--from", "--dry-run", "--zone-unchanged", "qualified", "never lowers", "busy", "operator",
                 "CALLTRACK_TOKEN"):
        assert word in result.stdout


def test_rollups_recount_refuses_a_day_that_is_not_one_before_sending_anything() -> None:
    result = run_cli("rollups", "recount", "--from", "11/01/2026", "--token", "t", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "--from must be a date YYYY-MM-DD" in result.output


def test_rollups_recount_stops_when_the_stack_answers_a_cursor_that_did_not_move() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    # Given a stack that answers every request with the day it was asked to go on from
    sent: list[dict] = []

    class Stuck(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            sent.append(body)
            answer = json.dumps({"account": "a", "to": "2026-11-30", "calls": 0, "rows_raised": 0,
                                 "days": [], "busy_days": [], "unstamped_days": [],
                                 "next_cursor": body.get("cursor", body["from"])}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stuck)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # When the operator recounts
        result = run_cli("rollups", "recount", "--from", "2026-11-01", "--to", "2026-11-30", "--account", "a",
                         "--token", "t", "--url", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    # Then the command stops with exit 1 after one request instead of asking for ever
    assert result.exit_code == 1, result.output
    assert "no progress" in result.output and len(sent) == 1
