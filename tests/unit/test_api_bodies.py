"""Request bodies before parsing (calltrack.bodies) and the report API's order: auth, then body
limits, then Powertools' validation; storage errors become 503."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calltrack.bodies import MAX_DEPTH, load_json, load_json_object, nesting_depth, require_json_content_type
from calltrack.errors import BadRequest, DomainError, PayloadTooLarge, UnsupportedMediaType
from calltrack.http_errors import storage_unavailable
from tests.support.bodies import BAD_BODIES
from tests.support.events import http_event


def test_nesting_depth_scans_without_recursion_and_ignores_strings() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert nesting_depth('"\\"[" ') == 0
    assert nesting_depth("[" * 100_000, limit=MAX_DEPTH) == MAX_DEPTH + 1  # stops early


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("[" * 1000 + "]" * 1000, BadRequest),
        ("x" * 20, BadRequest),
        (b'{"a": "\xff"}', BadRequest),
        ("", BadRequest),
        ("{}" + " " * 5000, PayloadTooLarge),
    ],
)
def test_bad_bodies_are_domain_errors_naming_body(raw: Any, error: type[DomainError]) -> None:
    with pytest.raises(error) as caught:
        load_json(raw, max_bytes=4096)
    assert caught.value.field == "body"


@pytest.mark.parametrize(("raw", "field"), [
    ('{"leads": [{"external_id": "\\ud800"}]}', "leads.0.external_id"),
    ('{"value": "ok \\udfff"}', "value"),
    ('{"\\udc00": 1}', "body"),
])
def test_a_lone_surrogate_escape_is_a_400_naming_where_it_is(raw: str, field: str) -> None:
    # Given valid JSON whose string holds half of a UTF-16 pair (no UTF-8 can carry it)
    # When it is read, Then it is refused naming the field, not stored or answered (a 500 there)
    with pytest.raises(BadRequest) as caught:
        load_json(raw, max_bytes=4096)
    assert caught.value.field == field
    # while a whole pair, escaped, is an ordinary character
    assert load_json('{"a": "\\ud83d\\ude00"}', max_bytes=64) == {"a": "\U0001f600"}


def test_a_body_within_the_limits_is_parsed_and_must_be_an_object() -> None:
    assert load_json_object('{"a": [[1]]}', max_bytes=64) == {"a": [[1]]}
    with pytest.raises(BadRequest, match="object"):
        load_json_object("[1]", max_bytes=64)


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]
)
def test_only_json_content_types_are_accepted(content_type: str) -> None:
    require_json_content_type({})
    require_json_content_type({"Content-Type": "application/json; charset=utf-8"})
    with pytest.raises(UnsupportedMediaType):
        require_json_content_type({"content-type": content_type})


def _event(method: str, path: str, kind: str, token: str | None) -> dict[str, Any]:
    import base64

    content_type, raw = BAD_BODIES[kind]
    headers = {"content-type": content_type} if content_type else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    event = http_event(method, path, headers=headers, body=base64.b64encode(raw).decode())
    event["isBase64Encoded"] = True
    return event


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
@pytest.mark.parametrize(
    ("method", "path"), [("PATCH", "/v1/calls/CA1"), ("POST", "/v1/crm/leads"), ("PUT", "/v1/spend")]
)
def test_the_report_api_authenticates_before_any_body_is_parsed(
    method: str, path: str, kind: str, operator_token: str
) -> None:
    # Given Powertools' validation, which parses bodies before any app.use middleware runs
    from report.handler import app

    # Without a token: 401, whatever the body (no RecursionError, no multipart parsing)
    resp = app.resolve(_event(method, path, kind, None), None)  # type: ignore[arg-type]
    assert resp["statusCode"] == 401, resp
    # With a valid one: a 4xx naming the body
    resp = app.resolve(_event(method, path, kind, operator_token), None)  # type: ignore[arg-type]
    assert resp["statusCode"] in (400, 413, 415), resp
    assert json.loads(resp["body"])["field"] == "body"


def test_storage_errors_are_recognised_through_pynamodb_wrapping() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError
    from pynamodb.exceptions import GetError

    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert storage_unavailable(GetError("Failed to get item", cause=down))
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem")
    assert storage_unavailable(throttled)
    assert not storage_unavailable(ClientError({"Error": {"Code": "ValidationException"}}, "GetItem"))
    assert not storage_unavailable(ValueError("bug"))
