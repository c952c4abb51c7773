"""The lease request: 400 naming the field, 413 for oversized bodies, absurd strings refused."""

from __future__ import annotations

import json

import pytest

from calltrack.errors import BadRequest, PayloadTooLarge
from dni_lease.validation import MAX_BODY_BYTES, parse_lease_request

GOOD = {
    "account": "acme-dental",
    "visitor_id": "v-12345678",
    "session_id": "s-12345678",
    "page_url": "https://acme.example.jp/",
    "utm": {"source": "google"},
    "gclid": "G1",
}


def body(**changes):
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_a_good_request_parses():
    r = parse_lease_request(body())
    assert r.account == "acme-dental" and r.utm["source"] == "google" and r.click_ids["gclid"] == "G1"


@pytest.mark.parametrize(
    "raw,field",
    [
        ("", "body"),
        ("{not json", "body"),
        ("[1, 2]", "body"),
        (body(account=...), "account"),
        (body(account="Bad Account!"), "account"),
        (body(visitor_id=123), "visitor_id"),
        (body(session_id="short"), "session_id"),
        (body(utm="google"), "utm"),
        (body(utm={"source": 5}), "utm.source"),
        (body(page_url="javascript:alert(1)"), "page_url"),
        (body(number="03-1234"), "number"),
        (body(lease_id="bad id!"), "lease_id"),
        (body(release="yes"), "release"),
        (body(release=True), "release"),  # a release names its number and lease
        (body(expires_at=1764580000), "expires_at"),
        (body(expires_at="tomorrow"), "expires_at"),
        (body(expires_at="2026-13-40T99:00:00Z"), "expires_at"),
        (body(expires_at="２０２６-12-01T09:30:00Z"), "expires_at"),
        (body(keyword="\ud800"), "keyword"),  # a lone surrogate from a broken page
        (body(utm={"source": "x\udfff"}), "utm.source"),
        (body(number="+8١٢٣٤٥٦٧٨٩٠"), "number"),  # Arabic-Indic digits are not E.164
        (body(ga_session_id="١٢٣"), "ga_session_id"),
        (body(fbc="fb.1.١٢٣٤٥٦٧٨٩٠.abc"), "fbc"),
    ],
)
def test_malformed_requests_name_the_field(raw, field):
    with pytest.raises(BadRequest) as err:
        parse_lease_request(raw)
    assert err.value.field == field and err.value.status == 400


def test_tracking_text_from_the_visitors_url_is_cut_and_cleaned_not_refused():
    # Given a visitor whose ad link carries an overlong utm_content, a decoded line break in a
    # utm value, U+FFFF in the keyword and a very long referrer (a refusal would repeat on every
    # lease of that visitor: dni.js keeps the first touch)
    r = parse_lease_request(body(utm={"content": "x" * 300, "campaign": "spring\nsale"},
                                 keyword="歯医者\uffff", referrer="https://ref.example/" + "q" * 3000))
    # Then the lease goes ahead with the text cut and cleaned
    assert r.utm["content"] == "x" * 256 and r.utm["campaign"] == "spring sale"
    assert r.keyword == "歯医者" and r.referrer is not None and len(r.referrer) == 2048
    # and a click id that is not one (overlong, a line break) is dropped, not cut or refused
    r = parse_lease_request(body(gclid="g" * 600, fbclid="abc\ndef", yclid="YC-1"))
    assert (r.click_ids["gclid"], r.click_ids["fbclid"], r.click_ids["yclid"]) == (None, None, "YC-1")


def test_a_release_names_the_expiry_its_page_last_saw():
    r = parse_lease_request(body(number="+815022220001", lease_id="lease-12345678", release=True,
                                 expires_at="2026-12-01T09:30:00Z"))
    assert r.release and r.seen_expires_at == 1796117400.0


def test_a_page_names_itself_and_a_page_id_of_another_shape_is_a_400_naming_it():
    r = parse_lease_request(body(page_id="0123456789abcdef0123456789abcdef"))
    assert r.page_id == "0123456789abcdef0123456789abcdef"
    for bad in ("short", "x" * 200, 12345678, "page id with spaces"):
        with pytest.raises(BadRequest) as err:
            parse_lease_request(body(page_id=bad))
        assert err.value.field == "page_id"


def test_oversized_body_is_413():
    with pytest.raises(PayloadTooLarge) as err:
        parse_lease_request(body(keyword="x" * MAX_BODY_BYTES))
    assert err.value.status == 413


def test_unknown_keys_are_ignored_for_old_cached_scripts():
    assert parse_lease_request(body(something_new=1)).account == "acme-dental"


def test_the_ad_platforms_cookie_ids_are_kept_for_the_lease_and_malformed_ones_name_the_field():
    # Given the ids dni.js reads from _ga, _ga_<container>, _fbp and _fbc (issue 16)
    ids = {"ga_client_id": "1234567890.1764460800", "ga_session_id": "1764460800",
           "fbp": "fb.1.1764460800123.987654321", "fbc": "fb.1.1764460800123.IwAR0x_y-z"}
    # Then they go into the lease's attribution fields as sent
    fields = parse_lease_request(body(**ids)).attribution_fields()
    assert {k: fields[k] for k in ids} == ids
    # And a value of another shape is a 400 naming the field
    for name, bad in [("ga_client_id", "GA1.1.123.456"), ("fbp", "fb.1.x.y"), ("fbc", "fb.1.123.<script>"),
                      ("ga_session_id", "s123")]:
        with pytest.raises(BadRequest) as err:
            parse_lease_request(body(**{name: bad}))
        assert err.value.field == name


def test_a_click_id_that_is_not_one_is_dropped_and_the_visitor_still_served():
    # Given a landing URL whose gclid is a spreadsheet formula, and a Yahoo! id with its dots
    r = parse_lease_request(body(gclid='=HYPERLINK("https://evil.example/x")', yclid="YSS.1000012345.ab-C_9"))
    # Then the lease request stands (no 400: the visitor gets a number), without the formula
    assert r.click_ids["gclid"] is None and r.click_ids["yclid"] == "YSS.1000012345.ab-C_9"
