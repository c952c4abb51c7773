"""The local stack end to end: health, routing, drain, jobs, outbox (issue 2, part 3)."""

from __future__ import annotations

import json

import pytest

from calltrack_cli.local.client import StackError
from tests.support.twilio import voice_form


def test_health_reports_emulator_gateway_and_pollers_up(local_stack):
    # When we ask the running stack for its health
    resp = local_stack.request("GET", "/health")
    # Then it answers 200 with every part up
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["emulator"] == "up"
    from infra.wiring import QUEUES, STREAMS

    expected = {f"stream-{s.table}-{s.consumer}" for s in STREAMS} | {f"queue-{q.name}" for q in QUEUES}
    expected.add("transcribe")  # the local Amazon Transcribe (calltrack_cli.local.transcribe)
    assert set(body["pollers"]) == expected
    assert all(state.startswith("up") for state in body["pollers"].values())


def test_unknown_route_is_a_json_404_like_api_gateway(local_stack):
    resp = local_stack.request("GET", "/no/such/route")
    assert resp.status_code == 404
    assert resp.json() == {"message": "Not Found"}


def test_wired_route_is_served_through_the_real_handler(local_stack):
    # Given a route from infra/wiring.py served by the report API
    # When it is called without a token
    resp = local_stack.request("GET", "/v1/calls")
    # Then the real handler answers (not the gateway's 404, not a 5xx)
    assert resp.status_code < 500
    assert resp.json() != {"message": "Not Found"}


def test_every_table_bucket_queue_and_topic_exists_in_the_emulator(local_stack):
    from calltrack.models import all_models, logical_name
    from calltrack.settings import get_settings

    stack = local_stack.stack
    tables = set(stack.client("dynamodb").list_tables()["TableNames"])
    assert {get_settings().table_name(logical_name(m)) for m in all_models()} <= tables
    buckets = {b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]}
    settings = get_settings()
    assert {settings.recordings_bucket, settings.exports_bucket, settings.routing_bucket} <= buckets
    assert settings.recording_queue_url == stack.queue_urls["recording"]
    assert settings.webhook_outbox_queue_url == stack.queue_urls["webhook_outbox"]
    from infra.wiring import QUEUES

    for queue in QUEUES:  # each with its dead-letter queue after the wiring's receive count
        attrs = stack.client("sqs").get_queue_attributes(
            QueueUrl=stack.queue_urls[queue.name], AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == queue.max_receive_count
    assert get_settings().ops_topic_arn.endswith(":calltrack-ops")


def test_run_job_with_unknown_name_lists_the_known_jobs(local_stack):
    with pytest.raises(StackError) as err:
        local_stack.run_job("no-such-job", "2026-11-30T09:00:00+09:00")
    assert "no-such-job" in str(err.value)
    assert "weekly-unanswered-alert" in str(err.value)


def test_outbox_lists_sns_messages_published_to_the_ops_topic(local_stack):
    # Given a message published to the ops topic
    stack = local_stack.stack
    stack.client("sns").publish(TopicArn=stack.topic_arn, Subject="test subject", Message="outbox-check-1")
    # When the outbox is read
    messages = local_stack.outbox()
    # Then it is there with its topic and subject
    mine = [m for m in messages if m["message"] == "outbox-check-1"]
    assert len(mine) == 1
    assert mine[0]["subject"] == "test subject"
    assert mine[0]["topic"] == stack.topic_arn
    assert mine[0]["timestamp"]


def test_drain_on_an_idle_stack_returns_idle(local_stack):
    assert local_stack.drain()["status"] == "idle"


def test_bodies_over_api_gateways_10_mb_limit_are_refused_with_413(local_stack):
    resp = local_stack.request(
        "POST", "/v1/crm/leads", data=b"x" * (10 * 1024 * 1024 + 1), headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 413


def test_signed_twilio_posts_reach_the_webhook_base64_encoded(local_stack):
    # Given an unknown tracking number (no account): the webhook still answers TwiML, never a 5xx
    resp = local_stack.twilio_post("/twilio/voice", voice_form("+815000000000", call_sid="CA" + "1" * 32))
    assert resp.status_code == 200
    assert "<Response" in resp.text
    # And a wrong signature is refused by the handler, which sees the same form
    bad = local_stack.twilio_post("/twilio/voice", voice_form("+815000000000"), signature="bad")
    assert bad.status_code in (401, 403)


def test_health_reports_the_emulator_down_while_it_is_stopped_and_up_again_after(local_stack):
    local_stack.stop_emulator()
    try:
        down = local_stack.request("GET", "/health")
        assert down.status_code == 503
        assert down.json()["emulator"] == "down"
    finally:
        local_stack.start_emulator()
    up = local_stack.request("GET", "/health")
    assert up.status_code == 200
    assert local_stack.drain()["status"] == "idle"


def test_local_time_header_runs_the_handler_at_that_instant_without_reaching_the_event(local_stack):
    # A wired route whose handler validates input: the header must not make it fail or leak through.
    resp = local_stack.request("GET", "/health", headers={"X-Calltrack-Local-Time": "not a time"})
    assert resp.status_code == 200  # local routes ignore it
    bad = local_stack.request("GET", "/v1/calls", headers={"X-Calltrack-Local-Time": "not a time"})
    assert bad.status_code == 400
    assert "x-calltrack-local-time" in bad.json()["message"]
