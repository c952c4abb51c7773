"""CRM push on the local stack: a completed call becomes a kintone record and a HubSpot call on the
caller's contact; a stage change (PATCH /v1/calls/{sid}) updates both. The fakes check auth and
payloads as the services document them (cli/calltrack_cli/local/fake_crm.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from calltrack_cli.local.fake_crm import FakeHubspot, FakeKintone
from tests.support import unique_account, unique_number
from tests.support.account_secrets import set_account_secret
from tests.support.accounts import account_config
from tests.support.twilio import play_call

KINTONE_TOKEN, HUBSPOT_TOKEN = "kintone-api-token-1", "pat-na1-hubspot-token"
FIELDS = {"call_sid": "通話ID", "caller": "電話番号", "channel": "流入元", "talk_seconds": "通話秒数",
          "stage": "ステージ"}


def kintone_account(stack: Any, kintone: FakeKintone, account: str, number: str, app: int, *,
                    token: str = KINTONE_TOKEN) -> None:
    """``account`` with one radio number, pushing to kintone ``app`` (FIELDS mapped) with ``token``
    set as its secret; the app in the fake kintone, with its real token."""
    kintone.add_app(app, KINTONE_TOKEN, set(FIELDS.values()))
    stack.apply(account_config(
        account, numbers=[{"number": number, "channel": "radio"}],
        crm_push={"kintone": {"domain": "acme.cybozu.com", "app": app, "token_secret": "kintone",
                              "fields": FIELDS}}))
    set_account_secret(stack, account, "kintone", token)


@pytest.fixture
def crms(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeKintone, FakeHubspot]]:
    from calltrack.settings import reset_settings

    kintone, hubspot = FakeKintone().start(), FakeHubspot(HUBSPOT_TOKEN).start()
    assert isinstance(kintone, FakeKintone) and isinstance(hubspot, FakeHubspot)
    monkeypatch.setenv("CALLTRACK_KINTONE_BASE_URL", kintone.url)
    monkeypatch.setenv("CALLTRACK_HUBSPOT_API_BASE_URL", hubspot.url)
    reset_settings()
    try:
        yield kintone, hubspot
    finally:
        monkeypatch.undo()
        reset_settings()
        kintone.stop()
        hubspot.stop()


def test_a_completed_call_and_its_stage_change_reach_kintone_and_hubspot(local_stack: Any, crms: Any) -> None:
    kintone, hubspot = crms
    # Given an account pushing to a kintone app (field codes mapped) and to HubSpot, tokens set
    account, number = unique_account("crm"), unique_number()
    app = 7
    kintone.add_app(app, KINTONE_TOKEN, set(FIELDS.values()))
    local_stack.apply(account_config(
        account, numbers=[{"number": number, "channel": "radio", "campaign": "spring"}],
        crm_push={"kintone": {"domain": "acme.cybozu.com", "app": app, "token_secret": "kintone",
                              "fields": FIELDS},
                  "hubspot": {"token_secret": "hubspot"}}))
    set_account_secret(local_stack, account, "kintone", KINTONE_TOKEN)
    set_account_secret(local_stack, account, "hubspot", HUBSPOT_TOKEN)
    manager = local_stack.create_token(account, "manager")
    # When a call is answered for 95 s and ends
    sid = play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0), talk=95,
                    caller="+819077778888")
    local_stack.drain()
    # Then kintone has one record with the mapped fields
    records = kintone.records(app)
    assert list(records.values()) == [{"通話ID": sid, "電話番号": "+819077778888", "流入元": "radio",
                                       "通話秒数": "95", "ステージ": ""}]
    # And HubSpot has the caller as a contact and the call logged on it: source, duration, stage
    [(contact, properties)] = hubspot.contacts.items()
    assert properties == {"phone": "+819077778888"}
    [call] = hubspot.calls.values()
    assert call["contacts"] == [contact]
    assert call["properties"]["hs_call_duration"] == "95000"
    assert call["properties"]["hs_call_direction"] == "INBOUND"
    assert "Source: radio / spring" in call["properties"]["hs_call_body"]
    assert "Stage: -" in call["properties"]["hs_call_body"]

    # When the call's stage changes to won
    resp = local_stack.request("PATCH", f"/v1/calls/{sid}", token=manager,
                               json={"stage": "won", "value": 50000})
    assert resp.status_code == 200, resp.text
    local_stack.drain()
    # Then the same kintone record and the same HubSpot call are updated, nothing new is added
    [(record_id, record)] = kintone.records(app).items()
    assert record["ステージ"] == "won" and kintone.apps[app].revisions[record_id] == 2
    assert len(hubspot.calls) == 1 and len(hubspot.contacts) == 1
    [call] = hubspot.calls.values()
    assert "Stage: won" in call["properties"]["hs_call_body"]
    assert "Value: 50000" in call["properties"]["hs_call_body"]


def test_a_record_added_while_its_caller_is_erased_leaves_no_link_behind(local_stack: Any, crms: Any) -> None:
    from datetime import timedelta
    from urllib.parse import quote

    from calltrack.settings import get_settings

    kintone, _ = crms
    # Given an account pushing to kintone, and kintone that adds the call's record while an admin
    # erases the caller (the record is added after the erasure ran)
    account, number, app = unique_account("crm"), unique_number(), 12
    kintone_account(local_stack, kintone, account, number, app, token=KINTONE_TOKEN)
    admin, caller = local_stack.create_token(account, "admin"), "+819077779999"
    erasures: list[Any] = []
    add = kintone.handle

    def erase_meanwhile(method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "POST" and isinstance(body, dict) and body.get("app") == app and not erasures:
            erase = f"/v1/callers/{quote(caller, safe='')}"
            erasures.append(local_stack.request("DELETE", erase, token=admin))
        return add(method, path, headers, body)

    kintone.handle = erase_meanwhile
    # When a call an hour ago ends and its record is pushed
    sid = play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
                    caller=caller)
    local_stack.drain()

    # Then the record reached kintone (a copy sent out: the erasure cannot reach it), but nothing of
    # the erased call is left here: no delivery and no link to the record
    assert erasures and erasures[0].status_code == 200, erasures[0].text
    assert [r["通話ID"] for r in kintone.records(app).values()] == [sid]
    left = local_stack.stack.client("dynamodb").query(
        TableName=get_settings().table_name("webhook_deliveries"), KeyConditionExpression="account = :a",
        ExpressionAttributeValues={":a": {"S": account}})["Items"]
    assert left == []


def test_a_wrong_kintone_token_fails_the_delivery_without_retrying(local_stack: Any, crms: Any) -> None:
    kintone, _ = crms
    account, number, app = unique_account("crm"), unique_number(), 8
    kintone_account(local_stack, kintone, account, number, app, token="not-the-token")
    admin = local_stack.create_token(account, "admin")
    play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0))
    local_stack.drain()
    assert kintone.records(app) == {}
    failed = local_stack.request("GET", "/v1/webhooks/deliveries", token=admin,
                                 params={"status": "failed"}).json()
    assert [(d["destination"], d["reason"], d["attempts"]) for d in failed["items"]] == [
        ("kintone", "kintone add: http-401", 1)]


def test_after_the_account_moves_to_another_kintone_app_a_change_adds_the_record_there(
    local_stack: Any, crms: Any
) -> None:
    kintone, _ = crms
    old_app, new_app = 21, 22
    for app in (old_app, new_app):
        kintone.add_app(app, KINTONE_TOKEN, set(FIELDS.values()))
    account, number = unique_account("crm"), unique_number()

    def push_to(app: int) -> None:
        from calltrack.accounts import account_reader

        local_stack.apply(account_config(
            account, numbers=[{"number": number, "channel": "radio"}],
            crm_push={"kintone": {"domain": "acme.cybozu.com", "app": app, "token_secret": "kintone",
                                  "fields": FIELDS}}))
        account_reader().forget()  # as the 30 s the functions cache an account's config go by

    # Given a call pushed to the old app (its record id there is 1)
    push_to(old_app)
    set_account_secret(local_stack, account, "kintone", KINTONE_TOKEN)
    manager = local_stack.create_token(account, "manager")
    now = datetime.now(UTC).replace(microsecond=0)
    first = play_call(local_stack, number, now, caller="+819011112222")
    local_stack.drain()
    assert list(kintone.records(old_app)) == ["1"]
    # and, after the account moved to the new app, another call whose record there is also id 1
    push_to(new_app)
    second = play_call(local_stack, number, now, caller="+819033334444")
    local_stack.drain()
    assert kintone.records(new_app)["1"]["通話ID"] == second

    # When the first call's stage changes
    resp = local_stack.request("PATCH", f"/v1/calls/{first}", token=manager, json={"stage": "won"})
    assert resp.status_code == 200, resp.text
    local_stack.drain()

    # Then the second call's record is untouched, and the first call's record is added to the new app
    records = kintone.records(new_app)
    assert records["1"]["通話ID"] == second and records["1"]["ステージ"] == ""
    [added] = [r for r in records.values() if r["通話ID"] == first]
    assert (added["電話番号"], added["ステージ"]) == ("+819011112222", "won")
    assert kintone.records(old_app)["1"]["ステージ"] == ""  # the old app is no longer written


def test_a_hubspot_contact_saved_with_the_national_number_gets_the_call(local_stack: Any, crms: Any) -> None:
    _, hubspot = crms
    # Given a HubSpot contact whose phone someone typed the Japanese way
    hubspot.contacts["9001"] = {"phone": "090-5555-6666", "firstname": "Hanako"}
    account, number = unique_account("crm"), unique_number()
    local_stack.apply(account_config(account, numbers=[{"number": number, "channel": "flyer"}],
                                     crm_push={"hubspot": {"token_secret": "hubspot"}}))
    set_account_secret(local_stack, account, "hubspot", HUBSPOT_TOKEN)
    contacts_before = len(hubspot.contacts)
    # When that person calls
    play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0), caller="+819055556666")
    local_stack.drain()
    # Then the call is logged on that contact, and no second contact is made for the same person
    assert len(hubspot.contacts) == contacts_before
    assert [c["contacts"] for c in hubspot.calls.values() if "9001" in c["contacts"]] == [["9001"]]


def test_a_kintone_add_whose_answer_was_lost_is_found_by_the_retry_not_added_twice(
    local_stack: Any, crms: Any
) -> None:
    kintone, _ = crms
    # Given an account pushing to kintone with the call's id mapped to a field, and kintone that
    # adds the first record but answers 502 (the answer lost on its way back)
    account, number, app = unique_account("crm"), unique_number(), 11
    kintone_account(local_stack, kintone, account, number, app, token=KINTONE_TOKEN)
    kintone.add_replies = [502]
    # When a call ends and its delivery is retried after the 502
    sid = play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0), talk=40)
    local_stack.drain()
    # Then the retry found the record by the call's id: one record, not two, and it is current
    records = kintone.records(app)
    assert [r["通話ID"] for r in records.values()] == [sid]
    lookups = [r for r in kintone.requests if r["method"] == "GET" and "records.json" in r["path"]]
    assert len(lookups) == 1 and sid in lookups[0]["body"]["query"]


def test_a_hubspot_call_whose_answer_was_lost_is_found_by_the_retry_not_logged_twice(
    local_stack: Any, crms: Any
) -> None:
    _, hubspot = crms
    # Given an account pushing to HubSpot, and HubSpot that logs the first call but answers 502
    # (the answer lost on its way back)
    account, number = unique_account("crm"), unique_number()
    local_stack.apply(account_config(account, numbers=[{"number": number, "channel": "radio"}],
                                     crm_push={"hubspot": {"token_secret": "hubspot"}}))
    set_account_secret(local_stack, account, "hubspot", HUBSPOT_TOKEN)
    hubspot.call_replies = [502]
    # When a call ends and its delivery is retried after the 502
    sid = play_call(local_stack, number, datetime.now(UTC).replace(microsecond=0), talk=40,
                    caller="+819033334444")
    local_stack.drain()
    # Then the retry found the call by its sid: HubSpot holds it once, on the caller's contact
    logged = [c for c in hubspot.calls.values() if c["properties"].get("hs_call_external_id") == sid]
    assert len(logged) == 1 and logged[0]["contacts"] and len(hubspot.calls) == 1
    searches = [r for r in hubspot.requests if r["path"] == "/crm/v3/objects/calls/search"]
    assert len(searches) == 1 and sid in json.dumps(searches[0]["body"])
