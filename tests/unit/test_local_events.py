"""The local gateway's translation between HTTP and API Gateway HTTP API payload v2.0 events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from calltrack_cli.local.events import (
    LambdaContext,
    dynamodb_stream_event,
    http_api_event,
    http_response,
    route_pattern,
    scheduled_job_event,
    sqs_event,
)
from calltrack_cli.local.gateway import LocalGateway, compile_routes, match_route
from infra.wiring import WIRING, LambdaFunction, Route, Wiring


def _event(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        method="POST",
        raw_path="/twilio/voice",
        raw_query="",
        headers=[("Host", "127.0.0.1:8787"), ("Content-Type", "application/json"), ("User-Agent", "ua/1")],
        body=b'{"a": 1}',
        route_key="POST /twilio/voice",
        now=1_700_000_000.0,
        request_id="req-1",
    )
    args.update(overrides)
    return http_api_event(**args)


def test_v2_event_has_the_api_gateway_shape():
    event = _event()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /twilio/voice"
    assert event["rawPath"] == "/twilio/voice"
    assert event["rawQueryString"] == ""
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "POST",
        "path": "/twilio/voice",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "ua/1",
    }
    assert ctx["routeKey"] == "POST /twilio/voice"
    assert ctx["stage"] == "$default"
    assert ctx["requestId"] == "req-1"
    assert ctx["timeEpoch"] == 1_700_000_000_000
    assert ctx["time"] == "14/Nov/2023:22:13:20 +0000"
    assert {"accountId", "apiId", "domainName"} <= set(ctx)
    # absent, not null, when there is nothing to carry (as in AWS)
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "cookies" not in event


def test_headers_are_lower_cased_and_duplicates_comma_joined():
    event = _event(headers=[("X-Thing", "a"), ("x-thing", "b"), ("Content-Type", "text/plain")])
    assert event["headers"]["x-thing"] == "a,b"
    assert event["headers"]["content-type"] == "text/plain"
    assert all(k == k.lower() for k in event["headers"])


def test_cookies_move_out_of_the_headers_into_cookies():
    event = _event(headers=[("Cookie", "a=1; b=2"), ("Cookie", "c=3")])
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]


def test_query_string_is_decoded_and_duplicates_comma_joined():
    event = _event(raw_query="from=2026-11-01&channel=flyer&channel=radio&q=a%20b")
    assert event["rawQueryString"] == "from=2026-11-01&channel=flyer&channel=radio&q=a%20b"
    assert event["queryStringParameters"] == {"from": "2026-11-01", "channel": "flyer,radio", "q": "a b"}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "text/plain", "text/csv", "application/xml"],
)
def test_text_like_bodies_are_passed_as_utf8_strings(content_type):
    event = _event(headers=[("Content-Type", content_type)], body="日本語".encode())
    assert event["isBase64Encoded"] is False
    assert event["body"] == "日本語"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_other_bodies_are_base64_encoded_like_http_apis_do(content_type):
    # Twilio's form posts arrive base64-encoded in AWS: handlers must decode them, so we do the same.
    headers = [("Content-Type", content_type)] if content_type else []
    body = b"CallSid=CA1&From=%2B81312345678"
    event = _event(headers=headers, body=body)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_no_body_means_no_body_key_and_not_base64():
    event = _event(method="GET", body=b"")
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_path_parameters_come_from_the_route_template():
    routes = compile_routes(WIRING)
    found = match_route(routes, "GET", "/v1/calls/CA123/recording")
    assert found is not None
    compiled, params = found
    assert compiled.route_key == "GET /v1/calls/{call_sid}/recording"
    assert params == {"call_sid": "CA123"}
    event = _event(method="GET", body=b"", route_key=compiled.route_key, path_parameters=params)
    assert event["pathParameters"] == {"call_sid": "CA123"}


def test_static_paths_win_over_parameters_and_methods_must_match():
    routes = compile_routes(WIRING)
    found = match_route(routes, "GET", "/v1/calls.csv")
    assert found is not None and found[0].route.path == "/v1/calls.csv"
    assert match_route(routes, "DELETE", "/v1/calls/CA1") is None
    assert match_route(routes, "GET", "/v1/calls/CA1/x/y") is None


def test_greedy_path_parameters_match_the_rest_of_the_path():
    greedy = route_pattern("/files/{proxy+}").match("/files/a/b/c")
    assert greedy is not None and greedy.group("proxy") == "a/b/c"
    assert route_pattern("/v1/{id}").match("/v1/a/b") is None


def test_full_response_with_headers_multi_value_headers_and_cookies():
    result = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/xml"},
            "multiValueHeaders": {"X-Many": ["1", "2"]},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "<Response/>",
        }
    )
    assert result.status == 201
    assert ("Content-Type", "text/xml") in result.headers
    assert [v for k, v in result.headers if k == "X-Many"] == ["1", "2"]
    assert [v for k, v in result.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]
    assert result.body == b"<Response/>"


def test_base64_response_bodies_are_decoded():
    payload = bytes(range(256))
    result = http_response(
        {"statusCode": 200, "body": base64.b64encode(payload).decode(), "isBase64Encoded": True}
    )
    assert result.body == payload


def test_simple_response_form_is_200_json():
    result = http_response({"hello": "world"})
    assert result.status == 200
    assert ("content-type", "application/json") in result.headers
    assert json.loads(result.body) == {"hello": "world"}


def test_lambda_context_looks_like_the_runtimes():
    ctx = LambdaContext("report_api", memory_limit_in_mb=512, timeout_s=29)
    assert ctx.function_name == "report_api"
    assert ctx.memory_limit_in_mb == 512
    assert ctx.invoked_function_arn.startswith("arn:aws:lambda:")
    assert ctx.aws_request_id
    assert 0 < ctx.get_remaining_time_in_millis() <= 29_000


def test_sqs_event_shape():
    event = sqs_event(
        "arn:aws:sqs:us-east-1:123456789012:q",
        [
            {
                "MessageId": "m1",
                "ReceiptHandle": "r1",
                "Body": "{}",
                "Attributes": {"ApproximateReceiveCount": "2"},
            }
        ],
    )
    record = event["Records"][0]
    assert record["messageId"] == "m1"
    assert record["receiptHandle"] == "r1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":q")
    assert record["attributes"]["ApproximateReceiveCount"] == "2"


def test_dynamodb_stream_event_shape():
    event = dynamodb_stream_event(
        "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        [
            {
                "eventID": "e1",
                "eventName": "INSERT",
                "dynamodb": {
                    "Keys": {"call_sid": {"S": "CA1"}},
                    "NewImage": {"call_sid": {"S": "CA1"}},
                    "SequenceNumber": "100",
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        ],
    )
    record = event["Records"][0]
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventName"] == "INSERT"
    assert record["dynamodb"]["Keys"] == {"call_sid": {"S": "CA1"}}
    assert record["eventSourceARN"].endswith("/stream/x")


@pytest.mark.parametrize(
    "at,expected",
    [
        ("2026-11-30T09:00:00+09:00", "2026-11-30T00:00:00Z"),
        ("2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z"),
        ("2026-11-30T00:00:00", "2026-11-30T00:00:00Z"),
    ],
)
def test_scheduled_job_event_is_what_the_input_transformer_sends(at, expected):
    assert scheduled_job_event("weekly-unanswered-alert", at, True) == {
        "job": "weekly-unanswered-alert",
        "time": expected,
        "force": True,
    }


def test_scheduled_job_event_rejects_a_bad_time():
    with pytest.raises(ValueError, match="ISO 8601"):
        scheduled_job_event("x", "next monday")


def _gateway_with(fn: LambdaFunction, route: Route) -> LocalGateway:
    wiring = Wiring(functions=(fn,), routes=(route,), queues=(), streams=())
    return LocalGateway(wiring=wiring, bind=False)  # dispatch() needs no socket


def test_dispatch_invokes_the_handler_and_returns_its_response():
    gw = _gateway_with(
        LambdaFunction("echo", "support", "tests.support.echo_handler.handler"),
        Route("GET", "/echo/{thing}", "echo"),
    )
    result = gw.dispatch("GET", "/echo/abc?x=1", [("Cookie", "s=1")], b"", "127.0.0.1")
    assert result.status == 200
    body = json.loads(result.body)
    assert body["function_name"] == "echo"
    assert body["event"]["pathParameters"] == {"thing": "abc"}
    assert body["event"]["cookies"] == ["s=1"]
    assert [v for k, v in result.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]


def test_a_handler_exception_is_an_api_gateway_500():
    gw = _gateway_with(
        LambdaFunction("boom", "support", "tests.support.echo_handler.boom"), Route("GET", "/boom", "boom")
    )
    result = gw.dispatch("GET", "/boom", [], b"", "127.0.0.1")
    assert result.status == 500
    assert json.loads(result.body) == {"message": "Internal Server Error"}


def test_local_clock_header_freezes_the_handlers_clock_and_is_not_forwarded():
    gw = _gateway_with(
        LambdaFunction("clock", "support", "tests.support.echo_handler.clock"),
        Route("GET", "/clock", "clock"),
    )
    result = gw.dispatch(
        "GET", "/clock", [("X-Calltrack-Local-Time", "2026-11-02T10:00:00+09:00")], b"", "::1"
    )
    body = json.loads(result.body)
    assert body["now"] == "2026-11-02T01:00:00+00:00"
    assert "x-calltrack-local-time" not in body["headers"]


def test_local_source_ip_header_is_the_events_source_ip_and_is_not_forwarded():
    # Given the echo handler behind the local gateway
    gw = _gateway_with(
        LambdaFunction("echo", "support", "tests.support.echo_handler.handler"), Route("GET", "/echo", "echo")
    )
    # When a request names another client address with the local-only header
    named = [("X-Calltrack-Local-Source-Ip", "2001:db8:1:2::1")]
    result = gw.dispatch("GET", "/echo", named, b"", "127.0.0.1")
    # Then the handler sees that address as the connection's, and not the header
    event = json.loads(result.body)["event"]
    assert event["requestContext"]["http"]["sourceIp"] == "2001:db8:1:2::1"
    assert "x-calltrack-local-source-ip" not in event["headers"]
    # And an address that is not one is a 400 naming the header, the handler not invoked
    bad = gw.dispatch("GET", "/echo", [("X-Calltrack-Local-Source-Ip", "10.0.0.300")], b"", "127.0.0.1")
    assert bad.status == 400 and "x-calltrack-local-source-ip" in json.loads(bad.body)["message"]


def test_unknown_paths_and_local_routes_without_a_stack_are_404():
    gw = _gateway_with(
        LambdaFunction("echo", "support", "tests.support.echo_handler.handler"), Route("GET", "/echo", "echo")
    )
    for path in ("/nope", "/_local/drain"):
        result = gw.dispatch("POST", path, [], b"", "127.0.0.1")
        assert result.status == 404
        assert json.loads(result.body) == {"message": "Not Found"}


def test_scripting_a_transcript_goes_to_the_stacks_local_transcribe_and_bad_bodies_are_400():
    class Control:
        scripted: dict[str, list] = {}
        drain = outbox = run_job = stop_emulator = start_emulator = health = None

        def script_transcript(self, call_sid, lines):
            self.scripted[call_sid] = lines
            return {"call_sid": call_sid, "lines": len(lines)}

    control = Control()
    gw = LocalGateway(wiring=Wiring(functions=(), routes=(), queues=(), streams=()), control=control,  # type: ignore[arg-type]
                      bind=False)
    sid = "CA" + "ab" * 16
    body = json.dumps({"lines": [["caller", 1.5, "予約したい"]]}).encode()
    result = gw.dispatch("PUT", f"/_local/transcripts/{sid}", [], body, "127.0.0.1")
    assert result.status == 200 and control.scripted[sid] == [["caller", 1.5, "予約したい"]]
    assert gw.dispatch("PUT", f"/_local/transcripts/{sid}", [], b"{}", "127.0.0.1").status == 400
    assert gw.dispatch("PUT", "/_local/transcripts/not-a-sid", [], body, "127.0.0.1").status == 404
