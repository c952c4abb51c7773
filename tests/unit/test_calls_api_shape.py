"""Calls API pieces: the CALL shape, local-date bounds, cursors and paging."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest

from call_records.calls import CALL_KEYS, call_to_json, decode_cursor, encode_cursor, utc_range
from calltrack.call_items import CallItems, call_from_item
from calltrack.errors import BadRequest

CALL = {
    "call_sid": "CA" + "a" * 32,
    "account": "acme",
    "tracking_number": "+815011112222",
    "caller": "+819012345678",
    "started_at": "2026-11-25T01:02:03Z",
    "status": "answered",
    "ring_seconds": 7,
    "talk_seconds": 42,
    "first_time": True,
    "channel": "google-ads",
    "campaign": "brand",
    "keyword": "歯医者",
    "confidence": 1.0,
    "attribution": json.dumps(
        {
            "gclid": "G1",
            "utm": {"source": "google"},
            "landing_page": "https://a/lp",
            "referrer": "https://www.google.com/",
        }
    ),
}


def test_call_json_has_every_contract_key_and_session_fields():
    out = call_to_json(CALL, mask_caller=False)
    assert set(CALL_KEYS) <= set(out)
    assert (out["gclid"], out["utm"], out["landing_page"]) == ("G1", {"source": "google"}, "https://a/lp")
    assert out["recording"] is None and out["tags"] == [] and out["caller"] == "+819012345678"


def test_the_call_says_its_version_as_a_number_so_receivers_can_order_late_events():
    # Given the call's row as DynamoDB hands it over (numbers as Decimal), when it is shown
    from decimal import Decimal

    shown = call_to_json({**CALL, "version": Decimal(7)}, mask_caller=False)
    # Then its version is a JSON number, and a row without one says null
    assert json.loads(json.dumps(shown))["version"] == 7
    unversioned = {k: v for k, v in CALL.items() if k != "version"}
    assert call_to_json(unversioned, mask_caller=False)["version"] is None


def test_marketers_see_the_caller_masked():
    assert call_to_json(CALL, mask_caller=True)["caller"] == "+********5678"


def test_a_stored_call_item_decodes_into_the_call_shape():
    # Given a call item as DynamoDB returns it (JSON fields as JSON text)
    raw = {
        "call_sid": {"S": "CA1"},
        "account": {"S": "acme"},
        "talk_seconds": {"N": "3"},
        "first_time": {"BOOL": False},
        "attribution": {"S": '{"gclid":"g-1","landing_page":"/lp"}'},
        "recording": {"S": '{"status":"stored","recording_sid":"RE1"}'},
    }
    # When the one call codec reads it and the one CALL shape renders it
    out = call_to_json(call_from_item(raw), mask_caller=False)
    # Then numbers, booleans and the JSON fields come out typed
    assert (out["call_sid"], out["talk_seconds"], out["first_time"]) == ("CA1", 3, False)
    assert out["gclid"] == "g-1" and out["landing_page"] == "/lp"
    assert out["recording"] == {"status": "stored", "recording_sid": "RE1"}


def test_a_json_field_of_another_shape_reads_as_absent():
    # Given a call whose transcript was written as a bare list, whose recording is not JSON and
    # whose rule hits are a native list (shapes the product never writes)
    raw = {
        "call_sid": {"S": "CA2"},
        "transcript": {"S": '[["caller", 1.0, "hello"]]'},
        "recording": {"S": "{not json"},
        "rule_hits": {"L": [{"S": "booked"}]},
        "attribution": {"M": {"gclid": {"S": "g-2"}}},
    }
    # When the one call codec reads it
    call = call_from_item(raw)
    # Then every reader sees those fields as absent (a dict or None, never a list or text)
    assert call is not None
    assert (call["transcript"], call["recording"], call["rule_hits"]) == (None, None, None)
    assert call["attribution"] == {"gclid": "g-2"}


def test_local_dates_become_utc_bounds_in_the_account_zone():
    lo, hi = utc_range(date(2026, 11, 25), date(2026, 11, 25), "Asia/Tokyo")
    assert lo == "2026-11-24T15:00:00"
    assert hi.startswith("2026-11-25T14:59:59")
    assert lo <= "2026-11-24T15:00:00Z" <= hi and lo <= "2026-11-25T14:59:59.5Z" <= hi
    assert not ("2026-11-25T15:00:00Z" <= hi)


def test_cursor_round_trips_and_is_bound_to_its_account():
    key = {"call_sid": {"S": "CA1"}, "account": {"S": "acme"}, "started_at": {"S": "2026-11-25T01:02:03Z"}}
    assert decode_cursor(encode_cursor(key), "acme") == key
    with pytest.raises(BadRequest) as err:
        decode_cursor(encode_cursor(key), "other")
    assert err.value.field == "cursor"
    with pytest.raises(BadRequest):
        decode_cursor("!!garbage!!", "acme")
    # a cursor of another date range (from/to changed while paging) or with an empty call sid
    assert decode_cursor(encode_cursor(key), "acme", ("2026-11-25T00:00:00", "2026-11-26T00:00:00~")) == key
    with pytest.raises(BadRequest, match="another date range"):
        decode_cursor(encode_cursor(key), "acme", ("2026-11-01T00:00:00", "2026-11-02T00:00:00~"))
    with pytest.raises(BadRequest):
        decode_cursor(encode_cursor({**key, "call_sid": {"S": ""}}), "acme")
    # a cursor nested deeper than the JSON parser recurses (4,000 characters in a URL) is a 400 too
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    with pytest.raises(BadRequest) as err:
        decode_cursor(deep, "acme")
    assert err.value.field == "cursor"


class PagedClient:
    def __init__(self, items, page=2):
        self.items, self.page, self.queries = items, page, []

    def query(self, **kw):
        self.queries.append(kw)
        start = 0
        if "ExclusiveStartKey" in kw:
            start = (
                next(
                    i
                    for i, it in enumerate(self.items)
                    if it["call_sid"] == kw["ExclusiveStartKey"]["call_sid"]
                )
                + 1
            )
        chunk = self.items[start : start + min(self.page, kw["Limit"])]
        out = {"Items": chunk, "ScannedCount": len(chunk)}
        if start + len(chunk) < len(self.items):
            out["LastEvaluatedKey"] = {k: chunk[-1][k] for k in ("call_sid", "account", "started_at")}
        return out


def test_paging_returns_limit_items_and_a_cursor_until_the_end():
    items = [
        {
            "call_sid": {"S": f"CA{i}"},
            "account": {"S": "acme"},
            "started_at": {"S": f"2026-11-25T0{i}:00:00Z"},
        }
        for i in range(5)
    ]
    client = PagedClient(items)
    seen, key = [], None
    for _ in range(5):
        got, key, _read = CallItems(client, "t").newest_first("acme", "a", "z", limit=3, cursor_key=key)
        seen += [c["call_sid"] for c in got]
        if key is None:
            break
    assert seen == [f"CA{i}" for i in range(5)]
