"""The lease response carries each number's formats, so dni.js needs no numbering table."""

from __future__ import annotations

from dni_lease.leasing import LeaseResult
from dni_lease.service import lease_body

CONFIG = {"account": "acme", "dni": {"cookie_days": 30}}
CONTRACT = {"number", "display", "expires_at", "pool", "lease_id", "shared", "confidence", "replace",
            "heartbeat_seconds", "cookie_days"}


def _body(number, replace):
    result = LeaseResult(number=number, pool="google", lease_id="L1", expires_at=1_800_000_000.0,
                         leased=True, confidence=1.0, lease_seconds=1800, replace=replace)
    return lease_body(result, CONFIG)


def test_a_chinese_number_has_country_code_86_not_861():
    body = _body("+8613812345678", ["+861012345678"])
    assert CONTRACT <= set(body)
    assert body["number"] == "+8613812345678" and body["display"] == "138 1234 5678"
    assert body["country_code"] == "86"
    assert body["formats"] == {
        "+8613812345678": {"country_code": "86", "national_number": "13812345678",
                           "national": "138 1234 5678", "international": "+86 138 1234 5678"},
        "+861012345678": {"country_code": "86", "national_number": "1012345678",
                          "national": "010 1234 5678", "international": "+86 10 1234 5678"},
    }


def test_a_japanese_number_and_the_site_number_it_replaces():
    body = _body("+815012345678", ["+81312345678"])
    assert body["display"] == "050-1234-5678" and body["country_code"] == "81"
    assert body["formats"]["+815012345678"] == {
        "country_code": "81", "national_number": "5012345678",
        "national": "050-1234-5678", "international": "+81 50-1234-5678",
    }
    assert body["formats"]["+81312345678"]["national"] == "03-1234-5678"
    assert body["replace"] == ["+81312345678"] and body["heartbeat_seconds"] == 600


def test_no_number_means_no_country_code_but_the_replace_numbers_still_have_formats():
    body = lease_body(LeaseResult(number=None, replace=["+81312345678"]), CONFIG)
    assert body["number"] is None and body["display"] is None and body["country_code"] is None
    assert set(body["formats"]) == {"+81312345678"}
