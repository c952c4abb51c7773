"""Privacy on the local stack: one caller's data in one account is exported and erased across every
table and every recording object version; the same caller's data in another account is untouched."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import unique_number, unique_recording_sid
from tests.support.account_secrets import set_account_secret
from tests.support.accounts import account_config
from tests.support.cognito import create_console_user, session_token, sign_in
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call


def _settings() -> Any:
    from calltrack.settings import get_settings

    return get_settings()


def seed_caller(stack: Any, account: str, number: str, caller: str) -> dict[str, Any]:
    """A call from ``caller`` with a stored recording (two object versions), a transcript (on the
    call and as Transcribe's JSON), a CRM lead, a conversion, a webhook delivery, the caller's
    sticky agent and an export row."""
    settings = _settings()
    db, s3 = stack.stack.client("dynamodb"), stack.stack.client("s3")
    sid = play_call(stack, number, datetime(2026, 10, 5, 1, 0, tzinfo=UTC), "answered", 60, caller=caller)
    rec = unique_recording_sid()
    key = f"recordings/{account}/2026/10/{sid}/{rec}.mp3"
    for body in (b"first take", b"second take"):  # two versions of the same key
        s3.put_object(Bucket=settings.recordings_bucket, Key=key, Body=body)
    s3.put_object(
        Bucket=settings.recordings_bucket,
        Key=f"transcripts/{account}/2026/10/{sid}/{rec}.json",
        Body=b'{"results": {}}',
    )
    recording = {
        "recording_sid": {"S": rec},
        "call_sid": {"S": sid},
        "account": {"S": account},
        "status": {"S": "stored"},
        "s3_key": {"S": key},
        "stored_at": {"S": "2026-10-05T01:02:00Z"},
        "attempts": {"N": "1"},
    }
    db.put_item(TableName=settings.table_name("recordings"), Item=recording)
    db.update_item(
        TableName=settings.table_name("calls"),
        Key={"call_sid": {"S": sid}},
        UpdateExpression="SET recording = :r, transcript = :t",
        ExpressionAttributeValues={
            ":r": {"S": json.dumps({"status": "stored", "recording_sid": rec, "s3_key": key})},
            ":t": {"S": json.dumps({
                "status": "stored", "recording_sid": rec, "language": "ja-JP",
                "segments": [["caller", 1.0, "予約したいです"]], "truncated": False,
                "stored_at": "2026-10-05T01:05:00Z",
            })},
        },
    )
    db.put_item(
        TableName=settings.table_name("crm_leads"),
        Item={
            "account": {"S": account},
            "external_id": {"S": f"L-{sid}"},
            "phone": {"S": caller},
            "created_at": {"S": "2026-10-05T02:00:00Z"},
            "call_sid": {"S": sid},
            "updated_at": {"S": "2026-10-05T02:00:00Z"},
        },
    )
    db.put_item(
        TableName=settings.table_name("conversions"),
        Item={
            "call_sid": {"S": sid},
            "key": {"S": "qualified#google_ads"},
            "account": {"S": account},
            "converted_at": {"S": "2026-10-05T01:00:00Z"},
            "rule": {"S": "qualified"},
            "destination": {"S": "google_ads"},
            "status": {"S": "pending"},
            "order_id": {"S": f"{sid}:qualified"},
        },
    )
    db.put_item(
        TableName=settings.table_name("webhook_deliveries"),
        Item={
            "account": {"S": account},
            "delivery_id": {"S": f"dlv_{sid[2:18]}"},
            "kind": {"S": "webhook"},
            "destination": {"S": "hook"},
            "call_sid": {"S": sid},
            "status": {"S": "pending"},
            "payload": {"S": json.dumps({"call": {"call_sid": sid, "caller": caller}})},
        },
    )
    db.update_item(
        TableName=settings.table_name("callers"),
        Key={"caller": {"S": caller}},
        UpdateExpression="SET #g = :g",
        ExpressionAttributeNames={"#g": f"agent#{account}"},
        ExpressionAttributeValues={":g": {"S": "alice"}},
    )  # the sticky agent (call flows)
    db.update_item(
        TableName=settings.table_name("callers"),
        Key={"caller": {"S": f"redial#{caller}"}},
        UpdateExpression="SET #l = :l, expire_at = :t",
        ExpressionAttributeNames={"#l": f"last#{account}"},
        ExpressionAttributeValues={":l": {"S": json.dumps({"number": "+815011112222", "at": 1.0})},
                                   ":t": {"N": "4102444800"}},
    )  # the last pool call (a redial's attribution), on the caller's redial item
    s3.put_object(
        Bucket=settings.exports_bucket,
        Key=f"calls/account={account}/date=2026-10-05/calls.csv",
        Body=f"account,call_sid,caller\n{account},{sid},{caller[:-4]}****\n".encode(),
    )
    return {"sid": sid, "recording_sid": rec, "key": key}


def all_items(stack: Any) -> list[str]:
    """Every item of every calltrack table in the emulator, as JSON text."""
    db = stack.stack.client("dynamodb")
    prefix = _settings().table_name("calls")[: -len("calls")]
    out = []
    for table in db.list_tables()["TableNames"]:
        if not table.startswith(prefix):
            continue
        for page in db.get_paginator("scan").paginate(TableName=table):
            out.extend(json.dumps(item, ensure_ascii=False) for item in page["Items"])
    return out


def rollups(stack: Any, account: str) -> list[dict[str, Any]]:
    db = stack.stack.client("dynamodb")
    items = db.scan(
        TableName=_settings().table_name("rollups"),
        FilterExpression="begins_with(pk, :a)",
        ExpressionAttributeValues={":a": {"S": f"{account}#"}},
    )["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def object_versions(stack: Any) -> list[str]:
    s3 = stack.stack.client("s3")
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=_settings().recordings_bucket):
        out.extend(str(v["Key"]) for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])])
    return out


def export_text(stack: Any, account: str) -> str:
    s3 = stack.stack.client("s3")
    key = f"calls/account={account}/date=2026-10-05/calls.csv"
    return str(s3.get_object(Bucket=_settings().exports_bucket, Key=key)["Body"].read().decode())


@pytest.fixture(scope="module")
def two_accounts(local_stack: Any) -> dict[str, Any]:
    caller, other = unique_number("+8190"), unique_number("+8190")
    out: dict[str, Any] = {"caller": caller, "other": other}
    for name in ("a", "b"):
        number = unique_number()
        account = apply_account(local_stack, f"priv{name}", numbers=[{"number": number, "channel": "flyer"}])
        out[name] = {
            "account": account,
            "number": number,
            "seed": seed_caller(local_stack, account, number, caller),
            **tokens(local_stack, account, "admin", "manager"),
        }
    at = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)
    out["a"]["other_sid"] = play_call(local_stack, out["a"]["number"], at, caller=other)
    local_stack.drain()
    return out


def path(number: str) -> str:
    return f"/v1/callers/{quote(number, safe='')}"


def test_an_admin_exports_everything_the_account_holds_about_a_caller(
    local_stack: Any, two_accounts: dict[str, Any]
) -> None:
    a = two_accounts["a"]
    # When an admin of account A asks for the caller
    resp = local_stack.request("GET", path(two_accounts["caller"]), token=a["admin"])
    # Then A's call, lead, recording (presigned), transcript, conversion and delivery are there, none of B's
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [c["call_sid"] for c in body["calls"]] == [a["seed"]["sid"]]
    assert [lead["phone"] for lead in body["crm_leads"]] == [two_accounts["caller"]]
    assert body["recordings"][0]["recording_sid"] == a["seed"]["recording_sid"]
    assert body["recordings"][0]["url"].startswith("http")
    # signed with SigV4: S3 refuses SigV2 URLs for objects under SSE-KMS
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in body["recordings"][0]["url"]
    assert body["transcripts"][0]["call_sid"] == a["seed"]["sid"]
    assert len(body["conversions"]) == 1 and len(body["webhook_deliveries"]) == 1
    # and a manager may not
    assert local_stack.request("GET", path(two_accounts["caller"]), token=a["manager"]).status_code == 403


def test_erasing_a_caller_in_one_account_leaves_nothing_there_and_everything_in_the_other(
    local_stack: Any, two_accounts: dict[str, Any]
) -> None:
    a, b, caller = two_accounts["a"], two_accounts["b"], two_accounts["caller"]
    b_before = [i for i in all_items(local_stack) if b["seed"]["sid"] in i or caller in i]
    b_versions = [k for k in object_versions(local_stack) if b["seed"]["sid"] in k]
    assert len(b_versions) == 3  # two recording versions and the transcript JSON
    a_rollups = rollups(local_stack, a["account"])
    assert a_rollups

    # When an admin of A erases the caller
    resp = local_stack.request("DELETE", path(caller), token=a["admin"])
    local_stack.drain()  # the calls stream's REMOVE reaches the rollup and call-changes consumers

    # Then it answers what it erased
    assert resp.status_code == 200, resp.text
    assert resp.json()["erased"] == {
        "calls": 1,
        "transcripts": 1,
        "recordings": 1,
        "twilio_recordings": 0,  # A keeps Twilio's copies (recording.delete_from_twilio off)
        "object_versions": 3,
        "crm_leads": 1,
        "conversions": 1,
        "webhook_deliveries": 1,
        "export_rows": 1,
        "caller_first_call": 1,
        "staged_exports": 0,
    }
    # and no item of any table ties the number or A's call to A any more
    items = all_items(local_stack)
    for item in items:
        if caller in item or a["seed"]["sid"] in item:
            assert a["account"] not in item, item
    assert not [k for k in object_versions(local_stack) if a["seed"]["sid"] in k]
    assert a["seed"]["sid"] not in export_text(local_stack, a["account"])
    # while B keeps every item and object version of the same caller
    b_after = {
        json.dumps(json.loads(i), sort_keys=True) for i in items if b["seed"]["sid"] in i or caller in i
    }
    for item in b_before:
        if a["account"] not in item:
            assert json.dumps(json.loads(item), sort_keys=True) in b_after, item
    assert sorted(k for k in object_versions(local_stack) if b["seed"]["sid"] in k) == sorted(b_versions)
    assert b["seed"]["sid"] in export_text(local_stack, b["account"])
    # and A's rollups (no personal data) stay as they were
    assert rollups(local_stack, a["account"]) == a_rollups
    # and A's other caller is untouched
    assert local_stack.request("GET", f"/v1/calls/{a['other_sid']}", token=a["admin"]).status_code == 200

    # When the erasure is asked again, it is idempotent: nothing more to erase
    again = local_stack.request("DELETE", path(caller), token=a["admin"])
    assert again.status_code == 200, again.text
    assert set(again.json()["erased"].values()) == {0}


def test_every_call_item_carries_its_ttl_from_the_accounts_retention_and_its_zone(
    local_stack: Any, two_accounts: dict[str, Any]
) -> None:
    # Given calls written by the voice webhook (default retention.calls_days: 1095)
    db = local_stack.stack.client("dynamodb")
    table = _settings().table_name("calls")
    # Then the calls table expires items by expire_at, and each call has it: its start + 1095 days
    ttl = db.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expire_at"
    item = db.get_item(TableName=table, Key={"call_sid": {"S": two_accounts["b"]["seed"]["sid"]}})["Item"]
    started = datetime(2026, 10, 5, 1, 0, tzinfo=UTC).timestamp()
    assert int(item["expire_at"]["N"]) == int(started) + 1095 * 86400
    # And each call is stamped with the account's time zone of the moment it was created, in the
    # same write (the rollups bucket it by that zone for good)
    assert item["timezone"] == {"S": "Asia/Tokyo"}


def test_the_audit_trail_shows_who_did_what_and_the_caller_only_as_a_salted_hash(
    local_stack: Any, two_accounts: dict[str, Any]
) -> None:
    a, caller = two_accounts["a"], two_accounts["caller"]
    # Given an export and an erasure of the caller by A's admin (idempotent: again is harmless)
    assert local_stack.request("GET", path(caller), token=a["admin"]).status_code == 200
    assert local_stack.request("DELETE", path(caller), token=a["admin"]).status_code == 200
    # When A's admin reads the audit trail of the day
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    resp = local_stack.request("GET", f"/v1/audit?from={today}&to={today}", token=a["admin"])
    # Then the token creations and both caller actions are there, with token id, role and result
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    actions = [i["action"] for i in items]
    assert "token.create" in actions and "caller.export" in actions and "caller.erase" in actions
    erase = next(i for i in items if i["action"] == "caller.erase" and i["result"] == "ok")
    assert erase["target"].startswith("caller#") and erase["token_id"].startswith("tok_")
    assert erase["role"] == "admin" and set(erase["detail"]) >= {"calls", "recordings"}
    # and every erasure was audited before it began, so one that failed midway still shows
    results = [i["result"] for i in items if i["action"] == "caller.erase"]
    assert results.count("started") >= results.count("ok") >= 1
    # and the number appears nowhere, only its salted hash (the same for both actions)
    assert caller not in resp.text and caller[1:] not in resp.text
    assert len({i["target"] for i in items if i["action"].startswith("caller.")}) == 1
    # and a manager may not read it; a bad range names the field
    day = f"/v1/audit?from={today}&to={today}"
    assert local_stack.request("GET", day, token=a["manager"]).status_code == 403
    bad = local_stack.request("GET", "/v1/audit?from=yesterday&to=2026-12-01", token=a["admin"])
    assert bad.status_code == 400 and "from" in bad.text
    # and a range that ends before it begins is a 400 too (DynamoDB refuses such a BETWEEN)
    reversed_range = local_stack.request("GET", "/v1/audit?from=2026-12-01&to=2026-01-01", token=a["admin"])
    assert reversed_range.status_code == 400 and reversed_range.json()["field"] == "from"


def all_object_keys(stack: Any) -> list[str]:
    s3 = stack.stack.client("s3")
    settings = _settings()
    out = []
    for bucket in (settings.recordings_bucket, settings.exports_bucket, settings.routing_bucket):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            out.extend(str(v["Key"]) for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])])
    return out


def test_a_deleted_account_leaves_nothing_behind(local_stack: Any) -> None:
    # Given an account with calls, a recording, a transcript, a lead, tokens and audit items
    number = unique_number()
    account = apply_account(local_stack, "gone", numbers=[{"number": number, "channel": "flyer"}])
    admin = local_stack.create_token(account, "admin")
    seed = seed_caller(local_stack, account, number, unique_number("+8190"))
    set_account_secret(local_stack, account, "crm-bridge", "s3cret-value")
    console_email, console_password = create_console_user(local_stack, account, "manager")
    console_session = session_token(local_stack, console_email, console_password)
    local_stack.drain()
    assert any(account in i for i in all_items(local_stack))
    # (and its QuickSight export has run: a day file and the account's expiry book)
    local_stack.run_job("daily-calls-export", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert f"exports/expiry/account={account}.json" in all_object_keys(local_stack)
    # When an admin tries, or the operator without the confirmation, nothing happens
    url, operator = f"/v1/accounts/{account}?confirm={account}", local_stack.admin_token
    assert local_stack.request("DELETE", url, token=admin).status_code == 403
    wrong = local_stack.request("DELETE", f"/v1/accounts/{account}?confirm=other", token=operator)
    assert wrong.status_code == 400 and "confirm" in wrong.text
    # When the operator deletes it with the confirmation
    resp = local_stack.request("DELETE", url, token=operator)
    local_stack.drain()
    # Then it answers what it removed, and no table item or object version of the account remains
    assert resp.status_code == 200, resp.text
    removed = resp.json()["removed"]
    assert removed["accounts"] == 1 and removed["calls"] == 1 and removed["numbers"] == 1
    assert removed["recording_objects"] == 2 and removed["tokens"] >= 1 and removed["secrets"] == 1
    # and its console users and groups are gone: the name, re-used, would start with none
    assert removed["console_users"] == 1
    assert sign_in(local_stack, console_email, console_password).status_code == 401
    idp = local_stack.stack.client("cognito-idp")
    groups = idp.list_groups(UserPoolId=local_stack.stack.user_pool_id)["Groups"]
    assert not [g for g in groups if g["GroupName"].startswith(f"{account}:")]
    ssm = local_stack.stack.client("ssm")
    assert ssm.get_parameters_by_path(Path=f"/calltrack/{account}", Recursive=True)["Parameters"] == []
    assert [i for i in all_items(local_stack) if account in i or seed["sid"] in i] == []
    assert [k for k in all_object_keys(local_stack) if account in k or seed["sid"] in k or number in k] == []
    # and its tokens get 401, and a second deletion finds nothing more
    assert local_stack.request("GET", "/v1/calls", token=admin).status_code == 401
    again = local_stack.request("DELETE", url, token=operator)
    assert again.status_code == 200 and set(again.json()["removed"].values()) == {0}
    # and an account created again under the same name starts without the old console users: the
    # session one of them still held (its token not yet expired) reads nothing of the new account
    local_stack.apply(account_config(account))
    stale = local_stack.request("GET", "/v1/calls", token=console_session)
    assert stale.status_code == 401 and "disabled" in stale.json()["message"], stale.text


def test_a_deletion_that_runs_out_of_time_answers_202_and_the_same_request_goes_on(
    local_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacy import handler

    # Given an account with calls, and a first request that has time for four looks at the clock
    number = unique_number()
    account = apply_account(local_stack, "slow", numbers=[{"number": number, "channel": "flyer"}])
    at = datetime(2026, 10, 7, 1, 0, tzinfo=UTC)
    sids = [play_call(local_stack, number, at, caller=unique_number("+8190")) for _ in range(3)]
    local_stack.drain()
    budgets = iter([4])

    def first_request_short(_context: Any) -> Any:
        looks = iter(range(next(budgets, 10**9)))
        return lambda: next(looks, None) is None

    monkeypatch.setattr(handler, "_out_of_time", first_request_short)
    url = f"/v1/accounts/{account}?confirm={account}"

    # When the operator deletes the account
    first = local_stack.request("DELETE", url, token=local_stack.admin_token)

    # Then it answers 202: not complete, what it removed so far, and to send the request again
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["complete"] is False and "again" in body["message"] and "accounts" not in body["removed"]
    still = local_stack.request("GET", f"/v1/accounts/{account}", token=local_stack.admin_token)
    assert still.status_code == 200  # the accounts row goes last

    # When the same request is sent again
    second = local_stack.request("DELETE", url, token=local_stack.admin_token)
    local_stack.drain()

    # Then it goes on to the end: complete, and nothing of the account remains
    assert second.status_code == 200 and second.json()["complete"] is True, second.text
    assert second.json()["removed"]["accounts"] == 1
    assert sum(a.json()["removed"].get("calls", 0) for a in (first, second)) == len(sids)
    assert [i for i in all_items(local_stack) if account in i or any(s in i for s in sids)] == []


def test_a_caller_on_the_line_is_erased_after_the_call_not_during_it(local_stack: Any) -> None:
    from tests.support.twilio import signed_post, voice_form

    # Given a caller whose call is ringing now (Twilio will post its end in a minute)
    number = unique_number()
    account = apply_account(local_stack, "privlive", numbers=[{"number": number, "channel": "flyer"}])
    admin = tokens(local_stack, account, "admin")["admin"]
    caller = unique_number("+8190")
    form = voice_form(number, caller=caller)
    assert signed_post(local_stack, "/twilio/voice", form, datetime.now(UTC)).status_code == 200
    # When an admin asks to erase the number during the call
    resp = local_stack.request("DELETE", path(caller), token=admin)
    # Then it is refused naming the number (the call's end would have written the call back, with
    # the caller's number, right after the erasure said it was gone), and nothing is erased
    assert resp.status_code == 409 and resp.json()["field"] == "number", resp.text
    shown = local_stack.request("GET", path(caller), token=admin).json()
    assert [c["call_sid"] for c in shown["calls"]] == [form["CallSid"]]


def test_a_national_number_is_read_in_the_accounts_region(local_stack: Any) -> None:
    # Given a Los Angeles account with a call from a US number
    number = unique_number()
    account = apply_account(local_stack, "privus", timezone="America/Los_Angeles",
                            numbers=[{"number": number, "channel": "flyer"}])
    admin = tokens(local_stack, account, "admin")["admin"]
    sid = play_call(local_stack, number, datetime(2026, 10, 5, 18, 0, tzinfo=UTC), caller="+14155551234")
    local_stack.drain()
    # When the admin asks for it the way Americans write it
    shown = local_stack.request("GET", path("(415) 555-1234"), token=admin)
    # Then it is that caller (it was read as a Japanese number: nothing found, nothing erased)
    assert shown.status_code == 200 and [c["call_sid"] for c in shown.json()["calls"]] == [sid]
    # And the erasure says which number it read the path as, and erased its call
    erased = local_stack.request("DELETE", path("(415) 555-1234"), token=admin).json()
    assert erased["number"] == "+14155551234" and erased["erased"]["calls"] == 1


def test_an_export_too_large_for_one_answer_is_handed_over_by_a_short_lived_url_and_erased_with_the_caller(
    local_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    import privacy.handler

    # Given a caller whose export is larger than the API may answer (Lambda's 6 MB: a caller of
    # years with long transcripts; here the limit is lowered instead of seeding megabytes)
    number, caller = unique_number(), unique_number("+8190")
    account = apply_account(local_stack, "big", numbers=[{"number": number, "channel": "flyer"}])
    seed = seed_caller(local_stack, account, number, caller)
    admin = local_stack.create_token(account, "admin")
    local_stack.drain()
    monkeypatch.setattr(privacy.handler, "MAX_ANSWER_BYTES", 2_000)

    # When an admin asks for it
    resp = local_stack.session.get(local_stack.url + path(caller), allow_redirects=False,
                                   headers={"Authorization": f"Bearer {admin}"})

    # Then the answer is a 303 to a presigned URL of the same document, which expires in 5 minutes
    assert resp.status_code == 303, resp.text
    assert resp.headers["Location"] == resp.json()["url"] and resp.json()["expires_in"] == 300
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in resp.headers["Location"]
    assert caller not in resp.text
    document = requests.get(resp.headers["Location"], timeout=10)
    assert document.status_code == 200
    body = document.json()
    assert [c["call_sid"] for c in body["calls"]] == [seed["sid"]] and body["number"] == caller

    # When the caller is then erased
    erased = local_stack.request("DELETE", path(caller), token=admin)
    # Then the staged export goes with everything else
    assert erased.status_code == 200 and erased.json()["erased"]["staged_exports"] == 1
    left = local_stack.stack.client("s3").list_objects_v2(
        Bucket=_settings().exports_bucket, Prefix=f"privacy-exports/{account}/").get("Contents", [])
    assert left == []


def test_a_callback_waiting_out_an_outage_does_not_bring_an_erased_caller_back(local_stack: Any) -> None:
    from datetime import timedelta

    from calltrack.erasure_marks import mark_key
    from calltrack.settings import get_settings
    from calltrack.twilio_edge import TwilioRequest
    from tests.support.twilio import voice_form
    from voice_webhook.outbox import message

    # Given a call whose callbacks met a storage outage an hour ago and still wait in the webhook's
    # outbox dead-letter queue (no call row: the erasure finds nothing of it)
    number = unique_number()
    account = apply_account(local_stack, "privoutbox", numbers=[{"number": number, "channel": "flyer"}])
    admin = tokens(local_stack, account, "admin")["admin"]
    caller = unique_number("+8190")
    form = voice_form(number, caller=caller)
    arrived = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    voice = TwilioRequest(method="POST", path="/twilio/voice", query="", headers={}, params=form)
    ended = TwilioRequest(method="POST", path="/twilio/call-status", query="", headers={},
                          params={**form, "CallStatus": "completed", "CallDuration": "40"})
    sqs, dlq = local_stack.stack.client("sqs"), local_stack.stack.dlq_urls["webhook_outbox"]
    for req, at in ((voice, arrived), (ended, arrived + 45)):
        sqs.send_message(QueueUrl=dlq, MessageBody=message(req, at))
    # When the caller is erased, and then the hourly redrive brings the callbacks back
    assert local_stack.request("DELETE", path(caller), token=admin).status_code == 200
    result = local_stack.run_job("webhook-outbox-dlq-redrive", datetime.now(UTC).isoformat())["result"]
    local_stack.drain()
    # Then the replay wrote nothing back: no call, no callers row with the number
    assert result["redriven"] == 2
    assert local_stack.request("GET", path(caller), token=admin).json()["calls"] == []
    db = local_stack.stack.client("dynamodb")
    callers = get_settings().table_name("callers")
    assert "Item" not in db.get_item(TableName=callers, Key={"caller": {"S": caller}})
    # And the mark it left holds no number: a hash, the account's erasure time, an expiry
    mark = db.get_item(TableName=callers, Key={"caller": {"S": mark_key(caller)}})["Item"]
    assert caller not in json.dumps(mark) and set(mark) == {"caller", f"at#{account}", "expire_at"}
    # And a new call of the same caller after the erasure is recorded as usual
    again = voice_form(number, caller=caller)
    sqs.send_message(QueueUrl=local_stack.stack.queue_urls["webhook_outbox"], MessageBody=message(
        TwilioRequest(method="POST", path="/twilio/voice", query="", headers={}, params=again),
        datetime.now(UTC).timestamp()))
    local_stack.drain()
    assert [c["call_sid"] for c in local_stack.request("GET", path(caller), token=admin).json()["calls"]] == [
        again["CallSid"]]
