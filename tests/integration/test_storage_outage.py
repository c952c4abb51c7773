"""Forwarding and the record while DynamoDB is unreachable (issue 15, defects 1 and 2).

- A Twilio callback that meets the outage is handed to the webhook's outbox (SQS, another service)
  and replayed, so every call's stored final state is what Twilio reported (answered calls used to
  become "missed" after an outage).
- A cold webhook process (every new Lambda container) forwards each tracking number to its own
  business from the routing snapshot in S3 (it used to tell callers to call again, or send every
  account's callers to one deployment-wide fallback number)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import unique_call_sid, unique_number
from tests.support.accounts import account_config
from tests.support.outage import WebhookStorageSwitch
from tests.support.stack import apply_account, tokens
from tests.support.twilio import TWILIO_ACCOUNT_SID, dial_of, signed_post

CALLS = 4
TALK = 42


def ringing(number: str) -> dict[str, str]:
    return {"CallSid": unique_call_sid(), "AccountSid": TWILIO_ACCOUNT_SID, "From": unique_number("+8190"),
            "To": number, "Direction": "inbound", "CallStatus": "ringing"}


def dial_result(form: dict[str, str], at: datetime) -> tuple[str, dict[str, str], datetime, str]:
    """The <Dial> action Twilio posts for ``form`` answered at ``at`` and talked TALK seconds."""
    end = at + timedelta(seconds=15 + TALK)
    dial = {**form, "DialCallStatus": "completed", "DialCallDuration": str(TALK)}
    return "/twilio/dial-status", dial, end, f"?t={int(at.timestamp())}"


def status_callback(form: dict[str, str], at: datetime) -> tuple[str, dict[str, str], datetime, str]:
    """The status callback at the end of that call (alone it would say: missed, 0 s)."""
    end = at + timedelta(seconds=15 + TALK)
    return "/twilio/call-status", {**form, "CallStatus": "completed", "CallDuration": str(15 + TALK)}, end, ""


@pytest.fixture()
def dynamodb_unreachable() -> Iterator[WebhookStorageSwitch]:
    """Yields a switch that takes the voice webhook's DynamoDB down and up (``down()`` again: a new
    container, nothing cached); afterwards it is up."""
    switch = WebhookStorageSwitch()
    yield switch
    switch.end()


def test_answered_calls_whose_dial_result_met_an_outage_are_stored_answered(
    local_stack: Any, dynamodb_unreachable: Any
) -> None:
    # Given calls that rang and were answered
    number = unique_number()
    account = apply_account(local_stack, "outbox", numbers=[{"number": number, "channel": "flyer"}])
    manager = tokens(local_stack, account, "manager")["manager"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    calls = []
    for i in range(CALLS):
        at = start + timedelta(minutes=i)
        form = ringing(number)
        assert signed_post(local_stack, "/twilio/voice", form, at).status_code == 200
        calls.append((form, at))
    # When DynamoDB is unreachable while Twilio posts each <Dial> result (answered, 42 s) ...
    dynamodb_unreachable.down()
    for form, at in calls:
        resp = signed_post(local_stack, *dial_result(form, at))
        assert resp.status_code == 200 and "<Hangup" in resp.text  # Twilio is answered at once
    # ... and is back when the status callbacks come (which alone would say: missed, 0 s)
    dynamodb_unreachable.up()
    for form, at in calls:
        assert signed_post(local_stack, *status_callback(form, at)).status_code == 200
    local_stack.drain()
    # Then every call is stored as Twilio reported it: answered, with its talk time
    wrong = []
    for form, _ in calls:
        call = local_stack.request("GET", f"/v1/calls/{form['CallSid']}", token=manager).json()
        if (call["status"], call["talk_seconds"]) != ("answered", TALK):
            wrong.append((call["status"], call["talk_seconds"]))
    assert wrong == []


def test_a_call_whose_every_callback_met_the_outage_is_rebuilt_from_the_outbox(
    local_stack: Any, dynamodb_unreachable: Any
) -> None:
    # Given a warm webhook that knows the number's routing
    number = unique_number()
    account = apply_account(local_stack, "outbox", numbers=[{"number": number, "channel": "radio"}])
    manager = tokens(local_stack, account, "manager")["manager"]
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    form = ringing(number)
    # When DynamoDB is unreachable for the whole call (voice, dial result, status callback)
    dynamodb_unreachable.down()
    posts = [("/twilio/voice", form, at, ""), dial_result(form, at), status_callback(form, at)]
    for path, params, when, query in posts:
        assert signed_post(local_stack, path, params, when, query).status_code == 200
    dynamodb_unreachable.up()
    local_stack.drain()
    # Then the call exists with its origin and its true outcome
    call = local_stack.request("GET", f"/v1/calls/{form['CallSid']}", token=manager).json()
    assert (call["channel"], call["status"], call["talk_seconds"]) == ("radio", "answered", TALK)
    assert call["started_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_cold_process_forwards_every_number_to_its_own_business_with_dynamodb_down(
    local_stack: Any, dynamodb_unreachable: Any
) -> None:
    # Given three businesses, each with static and pool numbers, and a deployment-wide fallback
    businesses = {}
    for i in range(3):
        forward_to = f"+8133333{i:04d}"
        static, pool = [unique_number() for _ in range(2)], [unique_number() for _ in range(3)]
        account = apply_account(
            local_stack, "snapshot", forward_to=forward_to,
            numbers=[{"number": n, "channel": "flyer"} for n in static],
            pools=[{"id": "web", "channel": "google-ads", "numbers": pool}],
        )
        businesses[account] = (forward_to, static + pool)
    # When DynamoDB is unreachable and every call reaches a fresh webhook process
    dynamodb_unreachable.down()
    forwarded, wrong = 0, []
    for forward_to, numbers in businesses.values():
        for number in numbers:
            dynamodb_unreachable.down()  # a new container: nothing cached
            resp = signed_post(local_stack, "/twilio/voice", ringing(number), datetime.now(UTC))
            dialled = dial_of(resp).find("Number")
            if dialled is not None and dialled.text == forward_to:
                forwarded += 1
            else:
                wrong.append(number)
    # Then 100% of the calls reach their own business
    assert wrong == [] and forwarded == sum(len(n) for _, n in businesses.values())


def test_a_removed_number_leaves_the_snapshot(local_stack: Any, dynamodb_unreachable: Any) -> None:
    # Given a number that was applied and then removed from the account
    kept, dropped = unique_number(), unique_number()
    both = [{"number": n, "channel": "radio"} for n in (kept, dropped)]
    account = apply_account(local_stack, "snapshot", numbers=both)
    local_stack.apply(account_config(account, numbers=[{"number": kept, "channel": "radio"}]))
    # When DynamoDB is down for a cold process
    dynamodb_unreachable.down()
    resp = signed_post(local_stack, "/twilio/voice", ringing(dropped), datetime.now(UTC))
    # Then the dropped number is no longer forwarded to the business (no stale routing)
    assert resp.status_code == 200 and "<Dial" not in resp.text


def test_a_dynamodb_that_never_answers_costs_the_webhook_two_tries_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import botocore.exceptions

    import voice_webhook.dynamo as dynamo

    # Given a DynamoDB endpoint that accepts connections and never answers (a slowdown, not refused)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(server.accept()[0]) for _ in range(8)], daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    dynamo.reset_client()
    tries: list[int] = []
    try:
        client = dynamo.client("us-east-1")
        # the client keeps its endpoint; the stack's consumers in this process must not build theirs
        # against the silent port
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        client.meta.events.register("before-send.dynamodb", lambda **_: tries.append(1))
        # When the webhook reads a number's routing
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            client.get_item(TableName="numbers", Key={"number": {"S": "+815011112222"}})
    finally:
        dynamo.reset_client()
        server.close()
        for conn in held:
            conn.close()
    # Then it gave up after two tries in all (three made one request cost 6 s: a menu's read and two
    # writes outlasted the function's timeout and the caller heard Twilio's error)
    assert len(tries) == dynamo.MAX_ATTEMPTS == 2


def test_a_call_whose_callbacks_outlasted_the_outbox_retries_is_recorded_by_the_hourly_redrive(
    local_stack: Any,
) -> None:
    import json

    from calltrack.twilio_edge import TwilioRequest
    from tests.support.times import utc_now_iso
    from voice_webhook.outbox import message

    # Given a call whose every callback met a storage outage longer than the outbox's ~2 hours of
    # replays: the three outbox messages, as the webhook wrote them, in the outbox's dead-letter queue
    number = unique_number()
    account = apply_account(local_stack, "outbox", numbers=[{"number": number, "channel": "radio"}])
    manager = tokens(local_stack, account, "manager")["manager"]
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    form = ringing(number)
    sqs, dlq = local_stack.stack.client("sqs"), local_stack.stack.dlq_urls["webhook_outbox"]
    for path, params, when, query in [("/twilio/voice", form, at, ""), dial_result(form, at),
                                      status_callback(form, at)]:
        req = TwilioRequest(method="POST", path=path, query=query.lstrip("?"), headers={}, params=params)
        sqs.send_message(QueueUrl=dlq, MessageBody=message(req, when.timestamp()))
    # and one message no replay could ever take
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"v": 0, "path": "/twilio/voice"}))
    assert local_stack.request("GET", f"/v1/calls/{form['CallSid']}", token=manager).status_code == 404

    # When storage is back and the hourly redrive job runs
    result = local_stack.run_job("webhook-outbox-dlq-redrive", utc_now_iso())["result"]
    local_stack.drain()

    # Then the call is recorded with its origin, its true outcome and the instant it started
    assert (result["redriven"], result["kept"]) == (3, 1)
    call = local_stack.request("GET", f"/v1/calls/{form['CallSid']}", token=manager).json()
    assert (call["channel"], call["status"], call["talk_seconds"]) == ("radio", "answered", TALK)
    assert call["started_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # And only the message no replay could take is left in the DLQ for the operator
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    waiting, hidden = attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]
    assert int(waiting) + int(hidden) == 1
