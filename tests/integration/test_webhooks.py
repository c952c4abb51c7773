"""Outbound webhooks end to end on the local stack: real calls through the signed Twilio webhooks,
the calls stream fanned out (call_changes), the webhooks queue consumer signing and posting to a
receiver on 127.0.0.1, retries time-compressed (CALLTRACK_RETRY_TIME_SCALE), the deliveries API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import unique_account, unique_number
from tests.support.account_secrets import set_account_secret
from tests.support.accounts import account_config
from tests.support.receiver import Receiver, readme_verify, serve
from tests.support.times import utc_now_iso
from tests.support.twilio import play_call

SECRET = "whsec-test-0123456789"
ALL_EVENTS = ["call.started", "call.completed", "call.updated", "recording.ready", "alert.weekly",
              "alert.spike", "review.monthly"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve(Receiver())


def subscribed(stack: Any, receiver: Receiver, *, include_caller: bool = False,
               **config: Any) -> dict[str, Any]:
    """A fresh account with one tracking number and one webhook to ``receiver``; its admin token."""
    account, number = unique_account("hooks"), unique_number()
    hook = {"id": "crm-bridge", "url": receiver.url, "events": ALL_EVENTS, "secret": "crm-bridge",
            "include_caller": include_caller}
    numbers = [{"number": number, "channel": "flyer", "campaign": "winter"}]
    stack.apply(account_config(account, numbers=numbers, webhooks=[hook], **config))
    set_account_secret(stack, account, "crm-bridge", SECRET)
    return {"account": account, "number": number, "admin": stack.create_token(account, "admin")}


def _settings() -> Any:
    from calltrack.settings import get_settings

    return get_settings()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def deliveries(stack: Any, world: dict[str, Any], status: str) -> list[dict[str, Any]]:
    resp = stack.request("GET", "/v1/webhooks/deliveries", token=world["admin"], params={"status": status})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def test_call_events_arrive_signed_as_the_readme_says(local_stack: Any, receiver: Receiver) -> None:
    # Given an account with a webhook subscribed to every event
    world = subscribed(local_stack, receiver)
    # When a call comes in, is answered and ends
    sid = play_call(local_stack, world["number"], now(), caller="+819011112222")
    local_stack.drain()
    # Then the receiver got call.started and call.completed for it, each verifying with the README's
    # recipe, the same id in the header and the body, and data as GET /v1/calls/{sid} shows it
    verify = readme_verify()
    got = {r.json()["type"]: r for r in receiver.received if r.json()["data"].get("call_sid") == sid}
    assert {"call.started", "call.completed"} <= set(got)
    for event_type, request in got.items():
        assert verify(SECRET, request.headers["X-Calltrack-Signature"], request.body)
        assert not verify("another-secret", request.headers["X-Calltrack-Signature"], request.body)
        assert not verify(SECRET, request.headers["X-Calltrack-Signature"], request.body + b" ")
        assert request.headers["X-Calltrack-Event"] == event_type
        assert request.headers["X-Calltrack-Delivery"].startswith("dlv_")
        body = request.json()
        assert body["account"] == world["account"] and body["id"].startswith("evt_")
    completed = got["call.completed"].json()["data"]
    shown = local_stack.request("GET", f"/v1/calls/{sid}", token=world["admin"]).json()
    assert completed["channel"] == shown["channel"] == "flyer"
    assert completed["status"] == shown["status"] == "answered"
    assert set(completed) == set(shown) - {"conversions"}  # the ad-platform uploads are not the call
    # And each event says the call's version, so a receiver can keep the newest of late events
    started = got["call.started"].json()["data"]
    assert isinstance(started["version"], int) and started["version"] < completed["version"]
    assert completed["version"] <= shown["version"]
    # And a delivery id is never sent twice for one event
    ids = [r.headers["X-Calltrack-Delivery"] for r in receiver.received]
    assert len(ids) == len(set(ids))


def test_include_caller_false_sends_no_caller_number_anywhere(local_stack: Any, receiver: Receiver) -> None:
    world = subscribed(local_stack, receiver, include_caller=False)
    play_call(local_stack, world["number"], now(), caller="+819033334444")
    local_stack.drain()
    assert receiver.received
    for request in receiver.received:
        text = request.body.decode()
        assert "9033334444" not in text and "33334444" not in text
        assert request.json()["data"]["caller"] is None


def test_include_caller_true_sends_the_number(local_stack: Any, receiver: Receiver) -> None:
    world = subscribed(local_stack, receiver, include_caller=True)
    play_call(local_stack, world["number"], now(), caller="+819055556666")
    local_stack.drain()
    assert {r.json()["data"]["caller"] for r in receiver.received} == {"+819055556666"}


def test_a_call_event_that_reaches_the_queue_after_its_caller_was_erased_sends_nothing(
        local_stack: Any, receiver: Receiver) -> None:
    from datetime import timedelta
    from urllib.parse import quote

    from calltrack.call_items import call_items

    # Given a call an hour ago sent to a receiver that takes the caller's number, and its call
    # event as the fan-out made it
    caller = "+819055557777"
    world = subscribed(local_stack, receiver, include_caller=True)
    sid = play_call(local_stack, world["number"], now() - timedelta(hours=1), caller=caller)
    local_stack.drain()
    image = call_items().get(sid, consistent=True)
    assert image is not None and receiver.received
    # And the caller erased on request
    erased = local_stack.request("DELETE", f"/v1/callers/{quote(caller, safe='')}", token=world["admin"])
    assert erased.status_code == 200, erased.text
    sent_before = len(receiver.received)

    # When the event reaches the webhooks queue only now (a backlog, the hourly stream replay)
    event = {"type": "call.updated", "account": world["account"], "call_sid": sid,
             "version": image.get("version"), "changed": ["stage"], "call": image}
    local_stack.stack.client("sqs").send_message(QueueUrl=local_stack.stack.queue_urls["webhooks"],
                                                 MessageBody=json.dumps(event, default=str))
    local_stack.drain()

    # Then nothing of the erased call is sent, and no delivery row holds it again
    assert len(receiver.received) == sent_before
    for status in ("pending", "retrying", "delivered", "failed"):
        assert [d for d in deliveries(local_stack, world, status) if d["call_sid"] == sid] == []


def test_a_delivery_sent_while_its_caller_is_erased_is_not_written_back(local_stack: Any,
                                                                          receiver: Receiver) -> None:
    from datetime import timedelta
    from urllib.parse import quote

    # Given a call an hour ago whose caller's number goes to a receiver, and a change of the call
    # whose event is sent while an admin erases the caller (the receiver answers after the erasure)
    caller = "+819055558888"
    world = subscribed(local_stack, receiver, include_caller=True)
    sid = play_call(local_stack, world["number"], now() - timedelta(hours=1), caller=caller)
    local_stack.drain()
    erasures: list[Any] = []

    def erase_meanwhile() -> None:
        if not erasures:
            erasures.append(local_stack.request("DELETE", f"/v1/callers/{quote(caller, safe='')}",
                                                token=world["admin"]))

    receiver.on_request = erase_meanwhile
    # When the call's stage changes, and its call.updated event is planned and sent
    changed = local_stack.request("PATCH", f"/v1/calls/{sid}", token=world["admin"], json={"stage": "won"})
    assert changed.status_code == 200, changed.text
    local_stack.drain()

    # Then the erasure took the delivery being sent, and the send's result did not write it back
    assert erasures and erasures[0].status_code == 200, erasures[0].text
    assert erasures[0].json()["erased"]["webhook_deliveries"] >= 1
    left = local_stack.stack.client("dynamodb").query(
        TableName=_settings().table_name("webhook_deliveries"), KeyConditionExpression="account = :a",
        ExpressionAttributeValues={":a": {"S": world["account"]}})["Items"]
    assert left == []


def test_a_receiver_down_for_a_while_gets_every_event_once_it_recovers(local_stack: Any,
                                                                       receiver: Receiver) -> None:
    # Given a receiver that drops every connection
    world = subscribed(local_stack, receiver)
    receiver.refuse = True
    sid = play_call(local_stack, world["number"], now())
    # When deliveries have failed a few times (backing off) and then the receiver comes back
    receiver.wait_for_attempts(4)
    assert deliveries(local_stack, world, "retrying")
    receiver.refuse = False
    local_stack.drain()
    # Then every event of the call arrived, and nothing is left retrying or failed
    types = {e["type"] for e in receiver.events() if e["data"].get("call_sid") == sid}
    assert {"call.started", "call.completed"} <= types
    assert deliveries(local_stack, world, "retrying") == []
    assert deliveries(local_stack, world, "failed") == []
    delivered = deliveries(local_stack, world, "delivered")
    assert any(d["attempts"] > 1 for d in delivered)


def test_a_receiver_that_keeps_failing_ends_in_the_dlq_and_can_be_retried(local_stack: Any,
                                                                          receiver: Receiver) -> None:
    from webhooks.backoff import MAX_RECEIVES

    # Given a receiver that answers 503 to everything
    world = subscribed(local_stack, receiver)
    receiver.status = 503
    sid = play_call(local_stack, world["number"], now())
    local_stack.drain()
    # Then after 24 h of (compressed) backoff each delivery is failed, listed, and dead-lettered
    failed = deliveries(local_stack, world, "failed")
    assert {d["event_type"] for d in failed} >= {"call.started", "call.completed"}
    for d in failed:
        # (tries: SQS's receives, MAX_RECEIVES in all; a receive whose answer was lost under a
        # loaded emulator counts as one without a try)
        assert MAX_RECEIVES - 2 <= d["attempts"] <= MAX_RECEIVES
        assert d["reason"] == "gave up after 24 h: http-503"
        assert d["call_sid"] == sid and "payload" not in d
    dead = dead_letters(local_stack)
    assert {d["delivery_id"] for d in failed} <= {m.get("delivery") for m in dead}
    # When the receiver is fixed and one delivery is retried through the API
    receiver.status = 200
    target = next(d for d in failed if d["event_type"] == "call.completed")
    resp = local_stack.request("POST", f"/v1/webhooks/deliveries/{target['delivery_id']}/retry",
                               token=world["admin"])
    assert resp.status_code == 202, resp.text
    local_stack.drain()
    # Then it arrives with the same delivery id, and is no longer failed
    assert [r.headers["X-Calltrack-Delivery"] for r in receiver.received] == [target["delivery_id"]]
    assert target["delivery_id"] not in {d["delivery_id"] for d in deliveries(local_stack, world, "failed")}
    # And the retry is in the audit trail
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    trail = local_stack.request("GET", f"/v1/audit?from=2026-01-01&to={today}", token=world["admin"]).json()
    assert [i["target"] for i in trail["items"] if i["action"] == "webhook.retry"] == [target["delivery_id"]]


def stranded_delivery(stack: Any, world: dict[str, Any], nonce: str, **row: Any) -> str:
    """A ping delivery's row as given (status, times, round) and its message in the webhooks DLQ, as
    SQS leaves them when it moves a message whose last receive never reached the sender."""
    from calltrack.account_config import parse_config
    from calltrack.settings import get_settings
    from webhooks.plan import plan_ping

    hook = {"id": "crm-bridge", "url": "http://127.0.0.1:9/x", "events": ["call.completed"],
            "secret": "crm-bridge"}
    config = parse_config(account_config(world["account"], webhooks=[hook]), local_mode=True)
    ping = plan_ping(config, "crm-bridge", nonce, "2026-12-01T00:00:00Z")
    item = {"account": world["account"], "delivery_id": ping.delivery_id, "kind": "webhook",
            "destination": "crm-bridge", "event_id": ping.event_id, "event_type": "ping",
            "payload": ping.payload_text(), "attempts": 11, "created_at": "2026-12-01T00:00:00Z", **row}
    item["status_key"] = f"{world['account']}#{item['status']}"
    stack.stack.client("dynamodb").put_item(
        TableName=get_settings().table_name("webhook_deliveries"),
        Item={k: {"N": str(v)} if isinstance(v, int) else {"S": str(v)} for k, v in item.items()},
    )
    message = {"delivery": ping.delivery_id, "account": world["account"]}
    stack.stack.client("sqs").send_message(QueueUrl=stack.stack.dlq_urls["webhooks"],
                                           MessageBody=json.dumps(message))
    return ping.delivery_id


def test_a_delivery_dead_lettered_before_its_last_try_is_listed_failed_by_the_hourly_sweep(
        local_stack: Any, receiver: Receiver) -> None:
    from datetime import timedelta

    def ago(hours: float) -> str:
        return (now() - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Given a delivery whose 11th try got a 503 14 hours ago and whose 12th never ran (its message
    # was dead-lettered, the row still says retrying, next try 7 hours ago), and one retried through
    # the API since an earlier round of it was dead-lettered (the row's round is 1, the dead letter's 0)
    world = subscribed(local_stack, receiver)
    stranded = stranded_delivery(local_stack, world, "stranded", status="retrying", reason="http-503",
                                 next_attempt_at=ago(7), updated_at=ago(14))
    retried = stranded_delivery(local_stack, world, "retried", status="pending", requeues=1,
                                updated_at=ago(14), reason="http-503")
    assert stranded not in {d["delivery_id"] for d in deliveries(local_stack, world, "failed")}

    # When the hourly sweep runs
    result = local_stack.run_job("webhook-dlq-sweep", utc_now_iso())["result"]

    # Then the stranded delivery is listed failed, saying why, with no next try; the retried one
    # is left to its own round
    assert result["failed"] >= 1
    failed = {d["delivery_id"]: d for d in deliveries(local_stack, world, "failed")}
    assert set(failed) == {stranded}
    reason = "gave up: dead-lettered before its last try ran (last failure: http-503)"
    assert failed[stranded]["reason"] == reason
    assert failed[stranded]["next_attempt_at"] is None
    assert [d["delivery_id"] for d in deliveries(local_stack, world, "pending")] == [retried]
    # And both dead letters are still in the queue for the operator (visible again)
    assert {stranded, retried} <= {m.get("delivery") for m in dead_letters(local_stack)}

    # When the failed delivery is retried through the API, it arrives with its own id
    resp = local_stack.request("POST", f"/v1/webhooks/deliveries/{stranded}/retry", token=world["admin"])
    assert resp.status_code == 202, resp.text
    local_stack.drain()
    assert stranded in [r.headers["X-Calltrack-Delivery"] for r in receiver.received]
    assert stranded in {d["delivery_id"] for d in deliveries(local_stack, world, "delivered")}


def test_the_test_route_sends_a_signed_ping(local_stack: Any, receiver: Receiver) -> None:
    started = datetime.now(UTC).strftime("%Y-%m-%d")
    world = subscribed(local_stack, receiver)
    resp = local_stack.request("POST", "/v1/webhooks/crm-bridge/test", token=world["admin"])
    assert resp.status_code == 202, resp.text
    local_stack.drain()
    pings = [r for r in receiver.received if r.json()["type"] == "ping"]
    assert len(pings) == 1
    assert pings[0].headers["X-Calltrack-Delivery"] == resp.json()["delivery_id"]
    assert readme_verify()(SECRET, pings[0].headers["X-Calltrack-Signature"], pings[0].body)
    # And the CLI does the same and lists nothing failed
    from tests.support.cli import run_cli

    cli = ("--url", local_stack.url, "--token", world["admin"])
    def lines(out: str) -> list[str]:  # the command's own lines (pollers may print metrics meanwhile)
        return [line for line in out.splitlines() if line.startswith("dlv_")]

    sent = run_cli("webhooks", "test", "crm-bridge", *cli)
    assert sent.exit_code == 0, sent.output
    assert [line.split()[2:4] for line in lines(sent.stdout)] == [["ping", "delivered"]]
    assert lines(run_cli("webhooks", "failed", *cli).stdout) == []
    assert run_cli("webhooks", "retry", "dlv_nope", *cli).exit_code == 2
    # And an unknown webhook is a 404 naming it; a marketer may not test
    unknown = local_stack.request("POST", "/v1/webhooks/nope/test", token=world["admin"])
    assert unknown.status_code == 404 and unknown.json()["field"] == "webhook"
    marketer = local_stack.create_token(world["account"], "marketer")
    assert local_stack.request("POST", "/v1/webhooks/crm-bridge/test", token=marketer).status_code == 403
    # And each test send is in the audit trail under the admin token that asked for it
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    trail = local_stack.request("GET", f"/v1/audit?from={started}&to={today}", token=world["admin"]).json()
    tests = [i for i in trail["items"] if i["action"] == "webhook.test"]
    assert len(tests) == 2 and {i["target"] for i in tests} == {"crm-bridge"}
    assert all(i["role"] == "admin" and i["token_id"].startswith("tok_") for i in tests)


def test_the_cli_test_waits_for_the_answer_and_fails_when_the_receiver_refuses(
    local_stack: Any, receiver: Receiver
) -> None:
    from tests.support.cli import run_cli

    # Given a receiver that answers 500
    world = subscribed(local_stack, receiver)
    receiver.status = 500
    cli = ("--url", local_stack.url, "--token", world["admin"])
    # When the CLI sends a test ping
    sent = run_cli("webhooks", "test", "crm-bridge", *cli)
    # Then it waited for the answer and says the ping was not taken (it exited 0 on "queued")
    assert sent.exit_code == 1, sent.output
    line = next(line for line in sent.stdout.splitlines() if line.startswith("dlv_"))
    assert line.split()[2:4] == ["ping", "retrying"] and "500" in line
    assert "tried again" in sent.stderr
    # And the delivery reads the same through the API; an unknown one is a 404 naming it
    shown = local_stack.request("GET", f"/v1/webhooks/deliveries/{line.split()[0]}", token=world["admin"])
    assert shown.status_code == 200 and shown.json()["status"] == "retrying"
    assert "payload" not in shown.json()
    unknown = local_stack.request("GET", "/v1/webhooks/deliveries/dlv_nope", token=world["admin"])
    assert unknown.status_code == 404 and unknown.json()["field"] == "delivery"
    assert local_stack.request("GET", "/v1/webhooks/deliveries/nope", token=world["admin"]).status_code == 400
    # And --wait 0 only queues it
    queued = run_cli("webhooks", "test", "crm-bridge", "--wait", "0", *cli)
    assert queued.exit_code == 0 and "waiting" not in queued.stderr


def test_a_redirect_is_not_followed(local_stack: Any, receiver: Receiver) -> None:
    # Given a receiver that redirects to the instance metadata address
    world = subscribed(local_stack, receiver)
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    # When a ping is sent
    local_stack.request("POST", "/v1/webhooks/crm-bridge/test", token=world["admin"])
    local_stack.drain()
    # Then the delivery failed at once, naming the redirect, after one request
    failed = deliveries(local_stack, world, "failed")
    assert [(d["event_type"], d["reason"], d["attempts"]) for d in failed] == [
        ("ping", "redirect not followed (http-302)", 1)]
    assert receiver.attempts == 1


def test_apply_refuses_literal_internal_addresses(local_stack: Any) -> None:
    account = unique_account("hooks")
    for url in ("http://169.254.169.254/latest", "http://10.0.0.8/hook", "http://[::ffff:192.168.0.1]/x"):
        resp = local_stack.request("PUT", f"/v1/accounts/{account}", token=local_stack.admin_token,
                                   json=account_config(account, webhooks=[
                                       {"id": "x", "url": url, "events": ["call.completed"], "secret": "s"}]))
        assert resp.status_code == 400, resp.text
        assert resp.json()["field"] == "webhooks[0].url"


def dead_letters(stack: Any) -> list[dict[str, Any]]:
    """Bodies in the webhooks DLQ (read without consuming: visibility 0)."""
    sqs = stack.stack.client("sqs")
    url = stack.stack.dlq_urls["webhooks"]
    out: list[dict[str, Any]] = []
    handles: list[str] = []
    # Each receive hides what it got, so the next one reads further (earlier tests' dead letters
    # share the queue); everything is made visible again afterwards.
    for _ in range(100):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  VisibilityTimeout=60).get("Messages", [])
        out += [json.loads(m["Body"]) for m in got]
        handles += [m["ReceiptHandle"] for m in got]
        if not got:
            break
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return out


def test_an_alert_carries_text_and_chatbot_json_and_reaches_subscribed_webhooks(local_stack: Any,
                                                                               receiver: Receiver) -> None:
    from tests.support.times import tokyo

    # Given an account alerting from 1 missed call an hour, with a webhook subscribed to alert.spike
    world = subscribed(local_stack, receiver, alerts={"spike_missed_per_hour": 1})
    for minute in (10, 20):
        play_call(local_stack, world["number"], tokyo(11, 27, 15, minute), "no-answer")
    local_stack.drain()
    # When the hourly spike check runs
    out = local_stack.run_job("missed-call-spike-check", "2026-11-27T16:05:00+09:00")
    assert out["result"]["accounts"][world["account"]]["decided"] == "published"
    local_stack.drain()
    # Then the SNS message has the plain text for email and the Chatbot custom notification for HTTPS
    [sent] = [m for m in local_stack.outbox()
              if (m["attributes"].get("account") or {}).get("Value") == world["account"]]
    structured = sent["structured"]
    assert structured["default"] == structured["email"] == sent["message"]
    assert "2" in sent["message"] and world["account"] in sent["message"]
    chat = json.loads(structured["https"])
    assert chat["version"] == "1.0" and chat["source"] == "custom"
    assert chat["content"]["title"] == sent["subject"]
    assert chat["content"]["description"] == sent["message"].strip()
    assert chat["content"]["nextSteps"] and all(isinstance(s, str) for s in chat["content"]["nextSteps"])
    # And the webhook got the same alert, signed
    [alert] = [r for r in receiver.received if r.json()["type"] == "alert.spike"]
    assert readme_verify()(SECRET, alert.headers["X-Calltrack-Signature"], alert.body)
    data = alert.json()["data"]
    assert data["subject"] == sent["subject"] and data["text"] == sent["message"] and data["missed"] == 2
