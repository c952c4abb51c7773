"""Call flows on the local stack (issue 18): hours and holidays replayed with the local clock header
(X-Calltrack-Local-Time), the menu, ring groups, who answered, sticky repeat callers, test calls,
and forwarding to the flow's first target while DynamoDB is down."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from calltrack_cli.local.gateway import CLOCK_HEADER
from tests.support import unique_account, unique_number
from tests.support.accounts import account_config
from tests.support.stack import tokens
from tests.support.twilio import signed_post, voice_form

JST = ZoneInfo("Asia/Tokyo")
TANAKA, SUZUKI, SATO = "+819011112222", "+819033334444", "+819055556666"
OFFICE = "+81312345678"
TEST_CALLER = "+819099990000"
MEMBERS = [{"agent": "tanaka", "number": TANAKA}, {"agent": "suzuki", "number": SUZUKI}]


def main_flow() -> dict[str, Any]:
    """The issue's example: weekday and Saturday hours, Japanese holidays, closed dates, a menu."""
    return {
        "hours": {
            "mon-fri": "09:00-18:00",
            "sat": "09:00-13:00",
            "holidays": "jp",
            "closed": ["2026-12-29", "2027-01-03"],
        },
        "menu": {
            "prompt": "ご予約は1を、その他のお問い合わせは2を押してください。",
            "options": {"1": "reception", "2": "office"},
            "timeout_to": "reception",
        },
        "targets": {
            "reception": {"ring_group": {"strategy": "round_robin", "ring_seconds": 20, "members": MEMBERS}},
            "office": {"forward": "03-1234-5678"},
        },
        "after_hours": {"voicemail": True, "message": "本日の受付は終了しました。"},
    }


def group_flow(strategy: str, members: list[dict[str, str]] = MEMBERS) -> dict[str, Any]:
    return {
        "targets": {"desk": {"ring_group": {"strategy": strategy, "ring_seconds": 15, "members": members}}}
    }


@pytest.fixture(scope="module")
def acct(local_stack: Any) -> dict[str, Any]:
    numbers = {name: unique_number() for name in ("main", "rr", "seq", "all")}
    account = unique_account("flows")
    config = account_config(
        account,
        flows={
            "main": main_flow(),
            "rr": group_flow("round_robin"),
            "seq": group_flow("sequential", [*MEMBERS, {"agent": "sato", "number": SATO}]),
            "all": group_flow("simultaneous"),
        },
        numbers=[{"number": n, "channel": "newspaper", "flow": name} for name, n in numbers.items()],
        test_callers=["090-9999-0000"],
    )
    # applied "on" 2026-11-30 (the local clock header), so the holidays expanded are 2026-2028
    # whatever day the tests run
    applied = local_stack.request(
        "PUT", f"/v1/accounts/{account}", token=local_stack.admin_token, json=config,
        headers={CLOCK_HEADER: "2026-11-30T09:00:00+09:00"},
    )
    assert applied.status_code == 200, applied.text
    return {"account": account, "numbers": numbers, **tokens(local_stack, account, "manager", "marketer")}


def at_jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


def call(
    stack: Any, number: str, at: datetime, caller: str | None = None
) -> tuple[dict[str, str], ET.Element]:
    form = voice_form(number, caller=caller)
    resp = signed_post(stack, "/twilio/voice", form, at)
    assert resp.status_code == 200, resp.text
    return form, ET.fromstring(resp.text)


def numbers_rung(twiml: ET.Element) -> list[str]:
    dial = twiml.find("Dial")
    assert dial is not None, ET.tostring(twiml)
    return [n.text or "" for n in dial.findall("Number")]


def get_call(stack: Any, acct: dict[str, Any], sid: str) -> dict[str, Any]:
    resp = stack.request("GET", f"/v1/calls/{sid}", token=acct["manager"])
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


# ------------------------------------------------------------------ hours, holidays, closed dates


@pytest.mark.parametrize(
    ("when", "branch"),
    [
        (at_jst(2026, 12, 1, 8, 59), "after-hours"),  # a Tuesday, a minute before opening
        (at_jst(2026, 12, 1, 9, 0), "open"),
        (at_jst(2026, 12, 1, 17, 59), "open"),
        (at_jst(2026, 12, 1, 18, 0), "after-hours"),  # closing time is not open
        (at_jst(2026, 12, 5, 12, 30), "open"),  # Saturday morning
        (at_jst(2026, 12, 5, 13, 0), "after-hours"),
        (at_jst(2026, 12, 6, 11, 0), "after-hours"),  # Sunday: no hours
        (at_jst(2026, 11, 23, 10, 0), "holiday"),  # 勤労感謝の日, a Monday
        (at_jst(2027, 1, 11, 10, 0), "holiday"),  # 成人の日 2027 (from the library, not a list)
        (at_jst(2026, 12, 29, 10, 0), "closed"),  # a closed date of the config, a Tuesday
    ],
)
def test_calls_replayed_at_local_times_take_the_right_branch(local_stack, acct, when, branch):
    # Given the flow; When a call comes in at that local time
    form, twiml = call(local_stack, acct["numbers"]["main"], when)
    # Then open hours answer with the menu, closed ones with the message and voicemail
    if branch == "open":
        gather = twiml.find("Gather")
        assert gather is not None and "ご予約は1を" in (gather.findtext("Say") or "")
        assert urlparse(gather.get("action")).path == "/twilio/menu"
    else:
        assert twiml.find("Gather") is None and twiml.find("Dial") is None
        assert twiml.findtext("Say") == "本日の受付は終了しました。"
        assert twiml.find("Record") is not None
    stored = get_call(local_stack, acct, form["CallSid"])
    assert (stored["flow"], stored["flow_branch"]) == ("main", branch)


def test_the_menu_rings_the_chosen_target_and_a_timeout_rings_timeout_to(local_stack, acct):
    # Given a call in open hours that heard the menu
    form, twiml = call(local_stack, acct["numbers"]["main"], at_jst(2026, 12, 1, 10, 0))
    action = urlparse(twiml.find("Gather").get("action"))  # type: ignore[union-attr]
    query = "?" + action.query
    when = at_jst(2026, 12, 1, 10, 0, 8)
    # When the caller presses 2 -> the office line
    office = signed_post(local_stack, "/twilio/menu", {**form, "Digits": "2"}, when, query)
    assert numbers_rung(ET.fromstring(office.text)) == [OFFICE]
    assert get_call(local_stack, acct, form["CallSid"])["menu_choice"] == "2"
    # When another caller presses nothing (Twilio's <Redirect> comes without Digits) -> reception
    form2, twiml2 = call(local_stack, acct["numbers"]["main"], at_jst(2026, 12, 1, 10, 1))
    query2 = "?" + urlparse(twiml2.find("Gather").get("action")).query  # type: ignore[union-attr]
    timed_out = signed_post(local_stack, "/twilio/menu", form2, at_jst(2026, 12, 1, 10, 1, 8), query2)
    assert numbers_rung(ET.fromstring(timed_out.text))[0] in (TANAKA, SUZUKI)
    stored = get_call(local_stack, acct, form2["CallSid"])
    assert (stored["target"], stored["menu_choice"]) == ("reception", "timeout")


def test_a_menu_choice_made_while_dynamodb_is_down_is_recorded_by_the_replay(local_stack, acct):
    from tests.support.outage import webhook_without_dynamodb

    # Given a call in open hours that heard the menu
    form, twiml = call(local_stack, acct["numbers"]["main"], at_jst(2026, 12, 1, 10, 2))
    query = "?" + urlparse(twiml.find("Gather").get("action")).query  # type: ignore[union-attr]
    # When the caller presses 2 while DynamoDB is unreachable (a fresh process: the routing snapshot)
    with webhook_without_dynamodb():
        pressed = {**form, "Digits": "2"}
        office = signed_post(local_stack, "/twilio/menu", pressed, at_jst(2026, 12, 1, 10, 2, 8), query)
    # Then the office still rings, and once DynamoDB is back the call records the choice (it was lost)
    assert numbers_rung(ET.fromstring(office.text)) == [OFFICE]
    local_stack.drain()
    stored = get_call(local_stack, acct, form["CallSid"])
    assert (stored["menu_choice"], stored["target"]) == ("2", "office")


def test_a_call_whose_status_callback_reached_storage_before_its_replay_keeps_its_flow_and_turn(
    local_stack, acct
):
    import json as _json

    from calltrack.settings import get_settings
    from calltrack.twilio_edge import TwilioRequest
    from voice_webhook import replay
    from voice_webhook.outbox import message

    number = acct["numbers"]["rr"]
    dynamodb = local_stack.stack.client("dynamodb")

    def turns() -> int:
        row = dynamodb.get_item(TableName=get_settings().table_name("numbers"), Key={"number": {"S": number}},
                                ConsistentRead=True)["Item"]
        return sum(int(v["N"]) for k, v in row.items() if k.startswith("rr#"))

    # Given a round-robin call whose incoming request met a storage outage (handed to the outbox),
    # and whose status callback reached storage first (it rebuilds the call's origin)
    at = at_jst(2026, 12, 2, 11, 0)
    form = voice_form(number)
    ended = {**form, "CallStatus": "completed", "CallDuration": "30"}
    rebuilt = signed_post(local_stack, "/twilio/call-status", ended, at + timedelta(seconds=40))
    assert rebuilt.status_code == 200
    assert get_call(local_stack, acct, form["CallSid"]).get("flow") is None
    before = turns()
    # When the outbox replays the incoming request
    req = TwilioRequest("POST", "/twilio/voice", "", {}, form, {k: [v] for k, v in form.items()})
    body = _json.loads(message(req, at.timestamp()))
    replay.replay(body, replay.storage(), local_stack.public_url)
    # Then the call records the flow's choice and the group's turn moved once
    stored = get_call(local_stack, acct, form["CallSid"])
    assert (stored["flow"], stored["target"], stored["status"]) == ("rr", "desk", "missed")
    assert turns() == before + 1
    # and a second replay of it (a duplicate message) changes neither
    replay.replay(body, replay.storage(), local_stack.public_url)
    assert turns() == before + 1


# ------------------------------------------------------------------ ring groups


def test_an_apply_that_rewrites_a_numbers_routing_keeps_its_round_robin_turn(local_stack):
    from calltrack.settings import get_settings

    # Given a round-robin number that has taken three calls (the group's turn moved three times)
    number, account = unique_number(), unique_account("turns")
    config = account_config(account, flows={"rr": group_flow("round_robin")},
                            numbers=[{"number": number, "channel": "newspaper", "flow": "rr"}])
    local_stack.apply(config)
    for i in range(3):
        call(local_stack, number, at_jst(2026, 12, 2, 10, i))
    dynamodb = local_stack.stack.client("dynamodb")

    def counters() -> dict[str, str]:
        row = dynamodb.get_item(TableName=get_settings().table_name("numbers"), Key={"number": {"S": number}},
                                ConsistentRead=True)["Item"]
        return {k: v["N"] for k, v in row.items() if k.startswith("rr#")}

    before = counters()
    assert sum(int(v) for v in before.values()) == 3
    # When a change of the account's config rewrites the number's row (a new ring timeout)
    config["ring_timeout"] = 40
    assert local_stack.apply(config)["numbers"]["updated"] == [number]
    # Then the group's turn is where it was (a full rewrite restarted it at the first member)
    assert counters() == before


def test_simultaneous_rings_every_member_in_one_dial(local_stack, acct):
    _, twiml = call(local_stack, acct["numbers"]["all"], at_jst(2026, 12, 1, 10, 0))
    assert numbers_rung(twiml) == [TANAKA, SUZUKI]
    agents = [parse_qs(urlparse(n.get("url")).query)["agent"] for n in twiml.find("Dial").findall("Number")]  # type: ignore[union-attr]
    assert agents == [["tanaka"], ["suzuki"]]


def test_sequential_rings_the_next_member_when_one_does_not_answer(local_stack, acct):
    # Given a call to a sequential group of three
    form, twiml = call(local_stack, acct["numbers"]["seq"], at_jst(2026, 12, 1, 10, 0))
    assert numbers_rung(twiml) == [TANAKA]
    rung = [TANAKA]
    # When each member lets it ring out, Twilio posts the <Dial> action, which rings the next one
    for _ in range(2):
        action = urlparse(twiml.find("Dial").get("action"))  # type: ignore[union-attr]
        assert action.path == "/twilio/ring-next"
        resp = signed_post(
            local_stack,
            action.path,
            {**form, "DialCallStatus": "no-answer"},
            at_jst(2026, 12, 1, 10, 0, 30),
            "?" + action.query,
        )
        twiml = ET.fromstring(resp.text)
        rung += numbers_rung(twiml)
    # Then all three rang in order, and the last one's result is the call's <Dial> result
    assert rung == [TANAKA, SUZUKI, SATO]
    assert urlparse(twiml.find("Dial").get("action")).path == "/twilio/dial-status"  # type: ignore[union-attr]


def test_round_robin_spreads_100_calls_within_ten_percent(local_stack, acct):
    # Given a round-robin group of two; When 100 new callers call
    first = Counter()
    for i in range(100):
        _, twiml = call(local_stack, acct["numbers"]["rr"], at_jst(2026, 12, 2, 10, 0) + timedelta(minutes=i))
        first[numbers_rung(twiml)[0]] += 1
    # Then each member was rung first for 50 ± 5 of them
    assert set(first) == {TANAKA, SUZUKI}
    assert all(45 <= count <= 55 for count in first.values()), first


def answer(
    stack: Any, form: dict[str, str], twiml: ET.Element, at: datetime, *, talk: int = 60, parent: bool = True
) -> str:
    """The first member rung picks up: Twilio requests its <Number url> (the whisper) on the member's
    leg (with ``ParentCallSid`` unless ``parent`` is False: then the CallSid in the signed URL
    names the call), then posts the <Dial> result. Returns the agent of the member that answered."""
    number = twiml.find("Dial").find("Number")  # type: ignore[union-attr]
    url = urlparse(number.get("url"))  # type: ignore[union-attr]
    leg = {
        "CallSid": "CA" + form["CallSid"][2:][::-1],
        "AccountSid": form["AccountSid"],
        "From": form["From"],
        "To": number.text or "",
        "Direction": "outbound-dial",
        "CallStatus": "in-progress",
    }
    if parent:
        leg["ParentCallSid"] = form["CallSid"]
    assert signed_post(stack, url.path, leg, at + timedelta(seconds=5), "?" + url.query).status_code == 200
    action = urlparse(twiml.find("Dial").get("action"))  # type: ignore[union-attr]
    done = signed_post(
        stack,
        action.path,
        {**form, "DialCallStatus": "completed", "DialCallDuration": str(talk)},
        at + timedelta(seconds=5 + talk),
        "?" + action.query,
    )
    assert done.status_code == 200 and "<Hangup" in done.text
    return parse_qs(url.query)["agent"][0]


def test_the_member_who_answers_is_the_agent_and_a_repeat_caller_goes_to_them_first(local_stack, acct):
    # Given a caller whose first call was answered by whoever round robin rang first
    caller = unique_number("+8190")
    at = at_jst(2026, 12, 3, 11, 0)
    form, twiml = call(local_stack, acct["numbers"]["rr"], at, caller)
    agent = answer(local_stack, form, twiml, at)
    stored = get_call(local_stack, acct, form["CallSid"])
    assert (stored["agent"], stored["status"], stored["talk_seconds"]) == (agent, "answered", 60)
    # When they call again, three times, while the rotation moves on
    firsts = []
    for i in range(1, 4):
        _, again = call(local_stack, acct["numbers"]["rr"], at + timedelta(hours=i), caller)
        firsts.append(numbers_rung(again)[0])
    # Then each time the agent who answered them rings first
    expected = {"tanaka": TANAKA, "suzuki": SUZUKI}[agent]
    assert firsts == [expected] * 3
    # And the calls list and the agents report know that agent without any PATCH
    local_stack.drain()
    listed = local_stack.request(
        "GET",
        "/v1/calls",
        token=acct["manager"],
        params={"from": "2026-12-03", "to": "2026-12-03", "agent": agent},
    ).json()
    assert form["CallSid"] in [c["call_sid"] for c in listed["items"]]
    report = local_stack.request(
        "GET", "/v1/reports/agents", token=acct["marketer"], params={"from": "2026-12-03", "to": "2026-12-03"}
    ).json()
    row = next(r for r in report["rows"] if r["agent"] == agent)
    assert row["answered"] >= 1


# ------------------------------------------------------------------ test calls


def test_test_calls_are_marked_listed_apart_and_change_no_report_figure(local_stack, acct):
    # Given the channel report of a day
    params = {"from": "2026-12-04", "to": "2026-12-04"}
    local_stack.drain()
    before = local_stack.request("GET", "/v1/reports/channels", token=acct["marketer"], params=params).json()
    # When the account's test caller calls and is answered
    at = at_jst(2026, 12, 4, 10, 0)
    form, twiml = call(local_stack, acct["numbers"]["rr"], at, TEST_CALLER)
    answer(local_stack, form, twiml, at)
    local_stack.drain()
    # Then the call is a test call, shown with ?test=1 and not with ?test=0
    assert get_call(local_stack, acct, form["CallSid"])["test"] is True
    tests_only = local_stack.request(
        "GET", "/v1/calls", token=acct["manager"], params={**params, "test": "1"}
    ).json()
    real_only = local_stack.request(
        "GET", "/v1/calls", token=acct["manager"], params={**params, "test": "0"}
    ).json()
    assert [c["call_sid"] for c in tests_only["items"]] == [form["CallSid"]]
    assert form["CallSid"] not in [c["call_sid"] for c in real_only["items"]]
    # And no report figure moved
    after = local_stack.request("GET", "/v1/reports/channels", token=acct["marketer"], params=params).json()
    assert after == before


# ------------------------------------------------------------------ fail-open


def test_with_dynamodb_down_a_cold_process_rings_the_flows_first_target(local_stack, acct):
    from tests.support.outage import webhook_without_dynamodb

    # Given a cold webhook process and DynamoDB unreachable (the routing snapshot in S3 is up)
    with webhook_without_dynamodb():
        # When a call comes in, even after hours
        _, twiml = call(local_stack, acct["numbers"]["main"], at_jst(2026, 12, 1, 22, 0))
    # Then it is forwarded to the flow's first target: every reception member at once
    assert numbers_rung(twiml) == [TANAKA, SUZUKI]


# ------------------------------------------------------------------ callbacks


def test_missed_calls_open_callbacks_and_closing_one_records_time_to_callback(local_stack, acct):
    # Given a call nobody answered (simultaneous group rang out) at 10:00 on 2026-12-07
    at = at_jst(2026, 12, 7, 10, 0)
    form, twiml = call(local_stack, acct["numbers"]["all"], at)
    action = urlparse(twiml.find("Dial").get("action"))  # type: ignore[union-attr]
    missed = signed_post(
        local_stack,
        action.path,
        {**form, "DialCallStatus": "no-answer"},
        at + timedelta(seconds=15),
        "?" + action.query,
    )
    assert missed.status_code == 200
    # and a test call missed the same way (no callback for it)
    test_form, test_twiml = call(local_stack, acct["numbers"]["all"], at + timedelta(minutes=1), TEST_CALLER)
    test_action = urlparse(test_twiml.find("Dial").get("action"))  # type: ignore[union-attr]
    signed_post(
        local_stack,
        test_action.path,
        {**test_form, "DialCallStatus": "no-answer"},
        at + timedelta(minutes=1, seconds=15),
        "?" + test_action.query,
    )
    day = {"from": "2026-12-07", "to": "2026-12-07"}
    # Then one callback is open
    opened = local_stack.request(
        "GET", "/v1/callbacks", token=acct["manager"], params={**day, "status": "open"}
    ).json()
    assert [c["id"] for c in opened["items"]] == [form["CallSid"]]
    # When tanaka calls back 25 minutes after the call ended
    resp = local_stack.request(
        "PATCH",
        f"/v1/callbacks/{form['CallSid']}",
        token=acct["manager"],
        json={"status": "done", "agent": "tanaka"},
        headers={"X-Calltrack-Local-Time": (at + timedelta(minutes=25, seconds=15)).isoformat()},
    )
    assert resp.status_code == 200, resp.text
    # Then it is done, with the time to callback, and no longer open
    assert (resp.json()["status"], resp.json()["agent"], resp.json()["seconds_to_callback"]) == (
        "done",
        "tanaka",
        1500,
    )
    still_open = local_stack.request(
        "GET", "/v1/callbacks", token=acct["manager"], params={**day, "status": "open"}
    ).json()
    assert still_open["items"] == []
    report = local_stack.request("GET", "/v1/reports/callbacks", token=acct["marketer"], params=day).json()
    assert report["rows"] == [
        {
            "channel": "newspaper",
            "callbacks": 1,
            "called_back": 1,
            "callback_rate": 1.0,
            "median_seconds_to_callback": 1500,
        }
    ]
    # And an answered call has no callback to close
    bad = local_stack.request(
        "PATCH", "/v1/callbacks/CA" + "0" * 32, token=acct["manager"], json={"status": "done"}
    )
    assert bad.status_code == 404
    wrong = local_stack.request(
        "PATCH", f"/v1/callbacks/{form['CallSid']}", token=acct["manager"], json={"status": "x"}
    )
    assert wrong.status_code == 400 and "status" in wrong.text


def test_calltrack_verify_prints_the_last_test_calls_and_whether_they_reached_the_target(local_stack, acct):
    from tests.support.cli import run_cli

    # Given a test call an hour ago to the round-robin number (no hours) that a member answered
    at = datetime.now(JST).replace(microsecond=0) - timedelta(hours=1)
    form, twiml = call(local_stack, acct["numbers"]["rr"], at, TEST_CALLER)
    agent = answer(local_stack, form, twiml, at, parent=False)
    national = "0" + acct["numbers"]["rr"][3:]  # as people write it: 050...
    # When the CLI verifies the number
    result = run_cli("verify", "--number", national, "--url", local_stack.url, "--token", acct["manager"])
    # Then it prints the call's source, flow branch and target, its agent, and that it was reached
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert "newspaper" in first and "flow rr:open→desk" in first and f"agent {agent}" in first
    assert first.endswith("reached")
    # And a number no test call reached exits 2
    seq = acct["numbers"]["seq"]
    nothing = run_cli("verify", "--number", seq, "--url", local_stack.url, "--token", acct["manager"])
    assert nothing.exit_code == 2 and "no test calls" in nothing.stdout


# ------------------------------------------------------------------ the budget


class CountingClient:
    """The DynamoDB client the webhook would use, counting each request it sends."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def send(**kwargs: Any) -> Any:
            self.sent.append(name)
            return method(**kwargs)

        return send


def test_a_round_robin_call_costs_two_aws_requests_new_or_repeat_caller(local_stack, acct):
    import logging

    import boto3

    from calltrack.settings import get_settings
    from calltrack.twilio_edge import TwilioRequest
    from voice_webhook import flow
    from voice_webhook.store import DynamoStorage

    # Given the webhook's storage over the emulator, counting requests
    settings = get_settings()
    client = CountingClient(boto3.session.Session().client("dynamodb", region_name=settings.region))
    tables = {name: settings.table_name(name) for name in ("numbers", "leases", "calls", "callers")}
    deps = flow.Deps(public_url=local_stack.public_url, storage=DynamoStorage(client, tables),
                     metrics=flow.MetricSink(), log=logging.getLogger("test"), cache=flow.RoutingCache())
    caller = unique_number("+8190")
    firsts, requests = [], []
    # When a new caller calls a round-robin group, then calls again (nobody answered: not sticky)
    for _ in range(2):
        form = voice_form(acct["numbers"]["rr"], caller=caller)
        client.sent.clear()
        _, twiml = flow.voice(TwilioRequest("POST", "/twilio/voice", "", {}, form), deps)
        requests.append(list(client.sent))
        firsts.append(numbers_rung(ET.fromstring(twiml))[0])
    # Then each call was one read and one write, the counter's bump inside the write
    assert requests == [["batch_get_item", "transact_write_items"]] * 2
    # And the rotation moved on: the second call rang the other member first
    assert firsts[0] != firsts[1]
