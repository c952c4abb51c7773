"""Issue 16, conversions: the rules (pure), the config's validation and the import files against
golden files (tests/golden/conversions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calltrack.account_config import ConfigError, parse_config
from conversions.csv_files import google_ads_csv, yahoo_ads_csv
from conversions.destinations import hashed_phone, local_time
from conversions.rules import plan
from tests.support.conversions import DESTINATIONS, call, config

GOLDEN = Path(__file__).parent.parent / "golden" / "conversions"
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def by_destination(planned: list[Any]) -> dict[str, Any]:
    return {p.destination: p for p in planned}


def test_a_qualifying_call_plans_each_destination_with_its_id_and_the_order_id():
    # Given a 95 s answered call with a gclid and a gbraid, a yclid and the GA/Meta cookies
    planned = by_destination(plan(call(), config(), NOW))
    # Then Google gets exactly one click id (the gclid), Yahoo! is CSV only, all share the order id
    assert (planned["google_ads"].click_id_type, planned["google_ads"].click_id) == ("gclid", "G1")
    assert planned["yahoo_ads"].skip == "csv_only" and planned["yahoo_ads"].click_id == "Y1"
    assert planned["meta"].skip is None and planned["meta"].extra["fbp"] == "fb.1.2.3"
    assert planned["ga4"].extra == {"client_id": "1.2", "session_id": None}
    assert {p.order_id for p in planned.values()} == {"CA" + "1" * 32 + ":phone-lead"}
    assert all(p.value == 5000 for p in planned.values())


@pytest.mark.parametrize(
    "change, when",
    [
        ({"talk_seconds": 59}, {"min_talk_seconds": 60}),
        ({"ended_at": None}, {"min_talk_seconds": 0}),
        ({"first_time": False}, {"first_time": True}),
        ({"stage": "lead"}, {"stage_at_least": "opportunity"}),
        ({"stage": "lost"}, {"stage_at_least": "lead"}),
        ({"channel": "flyer"}, {"channels": ["google-ads", "yahoo-ads"]}),
        ({"status": "missed", "talk_seconds": 0}, {"min_talk_seconds": 1}),
    ],
)
def test_a_call_that_misses_any_condition_plans_nothing(change, when):
    assert plan(call(**change), config(when=when), NOW) == []


def test_skips_say_why():
    old = call(started_at=(NOW - timedelta(days=91)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert by_destination(plan(old, config(), NOW))["google_ads"].skip == "click_too_old"
    no_ids = call(attribution={})
    skips = {d: p.skip for d, p in by_destination(plan(no_ids, config(), NOW)).items()}
    assert skips == {
        "google_ads": "no_click_id",
        "yahoo_ads": "no_click_id",
        "meta": None,
        "ga4": "no_client_id",
    }
    anonymous = call(attribution={}, caller=None)
    assert by_destination(plan(anonymous, config(), NOW))["meta"].skip == "no_user_data"
    unset = by_destination(plan(call(), config(), NOW, has_secret=lambda name: False))
    assert {d: p.skip for d, p in unset.items()} == {
        "google_ads": "no_credentials",
        "yahoo_ads": "csv_only",
        "meta": "no_credentials",
        "ga4": "no_credentials",
    }


def test_the_won_value_is_sent_once_known_and_the_default_before():
    rule_config = config(value={"from": "won_value", "default": 3000})
    assert plan(call(), rule_config, NOW)[0].value == 3000
    won = plan(call(stage="won", value=80000), rule_config, NOW)[0]
    assert won.value == 80000 and won.value_from_call


def test_meta_builds_fbc_from_the_fbclid_when_the_cookie_is_missing():
    meta = by_destination(plan(call(attribution={"fbclid": "IwAR0x"}), config(), NOW))["meta"]
    started_ms = int(datetime(2026, 11, 29, 1, 2, 3, tzinfo=UTC).timestamp() * 1000)
    assert meta.extra["fbc"] == f"fb.1.{started_ms}.IwAR0x"


def test_formats_the_platforms_ask_for():
    assert local_time("2026-11-29T15:30:00Z", "Asia/Tokyo") == "2026-11-30 00:30:00+09:00"
    # Meta: SHA-256 of the E.164 digits without "+" (whatever separators the number was written with)
    import hashlib

    assert hashed_phone("+81 90-1234-5678") == hashlib.sha256(b"819012345678").hexdigest()


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"conversions": [{"name": "x", "destinations": ["meta"]}]}, "conversions[0].destinations[0]"),
        (
            {"conversions": [{"name": "x", "destinations": ["tiktok"]}], "destinations": DESTINATIONS},
            "conversions[0].destinations",
        ),
        (
            {
                "conversions": [
                    {"name": "x", "value": {"fixed": 1, "from": "won_value"}, "destinations": ["meta"]}
                ],
                "destinations": DESTINATIONS,
            },
            "conversions[0].value",
        ),
        (
            {"destinations": {"google_ads": {"customer_id": "12", "conversion_action_id": "1"}}},
            "destinations.google_ads.customer_id",
        ),
        (  # full-width digits (an IME's) would reach the platform's URL and fail every upload
            {"destinations": {"google_ads": {"customer_id": "１２３-４５６-７８９０",
                                             "conversion_action_id": "1"}}},
            "destinations.google_ads.customer_id",
        ),
        (
            {"destinations": {"meta": {"pixel_id": "１２３４５６７８９０", "secret": "meta"}}},
            "destinations.meta.pixel_id",
        ),
        (
            {"destinations": {"ga4": {"measurement_id": "UA-1", "secret": "ga4"}}},
            "destinations.ga4.measurement_id",
        ),
        (
            {
                "conversions": [
                    {"name": "x", "when": {"stage_at_least": "lost"}, "destinations": ["meta"]}
                ],
                "destinations": DESTINATIONS,
            },
            "conversions[0].when.stage_at_least",
        ),
        (
            {
                "conversions": [{"name": "x", "currency": "yen", "destinations": ["meta"]}],
                "destinations": DESTINATIONS,
            },
            "conversions[0].currency",
        ),
        (  # two rules to one Google Ads action: Google keeps one conversion per click and action
            {
                "conversions": [{"name": "lead", "destinations": ["google_ads"]},
                                {"name": "won", "destinations": ["google_ads"]}],
                "destinations": DESTINATIONS,
            },
            "conversions[1].google_ads_conversion_action_id",
        ),
        (
            {
                "conversions": [{"name": "x", "destinations": ["google_ads"],
                                 "google_ads_conversion_action_id": "abc"}],
                "destinations": DESTINATIONS,
            },
            "conversions[0].google_ads_conversion_action_id",
        ),
    ],
)
def test_bad_conversion_config_names_the_field(bad, field):
    with pytest.raises(ConfigError) as err:
        parse_config({"account": "acme", "forward_to": "+81312345678", **bad})
    assert err.value.field == field


def rows() -> list[dict[str, Any]]:
    base = {"rule": "phone-lead", "currency": "JPY", "status": "skipped"}
    return [
        {
            **base,
            "destination": "google_ads",
            "reason": "no_credentials",
            "click_id_type": "gclid",
            "click_id": "Cj0KCQiA-gclid-2",
            "converted_at": "2026-11-29T15:30:00Z",
            "value": 80000.0,
            "order_id": "CA2:phone-lead",
        },
        {
            **base,
            "destination": "google_ads",
            "reason": "no_credentials",
            "click_id_type": "gclid",
            "click_id": "Cj0KCQiA-gclid-1",
            "converted_at": "2026-11-28T01:02:03Z",
            "value": 5000.0,
            "restated_value": 12500.5,
            "order_id": "CA1:phone-lead",
        },
        # a wbraid cannot go in the template's GCLID column; a sent row is not for manual import
        {
            **base,
            "destination": "google_ads",
            "reason": "no_credentials",
            "click_id_type": "wbraid",
            "click_id": "WB1",
            "converted_at": "2026-11-28T02:00:00Z",
            "value": 5000.0,
            "order_id": "CA3:phone-lead",
        },
        {
            **base,
            "destination": "google_ads",
            "status": "sent",
            "reason": None,
            "click_id_type": "gclid",
            "click_id": "G-sent",
            "converted_at": "2026-11-28T03:00:00Z",
            "value": 5000.0,
            "order_id": "CA4:phone-lead",
        },
        {
            **base,
            "rule": "来院予約",
            "destination": "yahoo_ads",
            "reason": "csv_only",
            "click_id_type": "yclid",
            "click_id": "YSS.1000012345.EAIaIQ",
            "converted_at": "2026-11-29T15:30:00Z",
            "value": 5000.0,
            "order_id": "CA2:来院予約",
        },
        {
            **base,
            "destination": "yahoo_ads",
            "reason": "no_click_id",
            "click_id_type": None,
            "click_id": None,
            "converted_at": "2026-11-29T16:00:00Z",
            "value": 5000.0,
            "order_id": "CA5:phone-lead",
        },
    ]


def test_the_google_ads_file_matches_the_golden_file_byte_for_byte():
    body = google_ads_csv(rows(), "Asia/Tokyo")
    assert body == (GOLDEN / "google-ads.csv").read_bytes()
    assert not body.startswith(b"\xef\xbb\xbf")  # Google's template: no BOM


def test_the_yahoo_ads_file_matches_the_golden_file_byte_for_byte():
    body = yahoo_ads_csv(rows(), "Asia/Tokyo")
    assert body == (GOLDEN / "yahoo-ads.csv").read_bytes()
    assert body.decode("cp932").startswith('"YCLID","コンバージョン名"')  # Shift_JIS, no BOM


def test_a_stored_click_id_that_is_not_one_is_neither_sent_nor_listed_in_an_import_file() -> None:
    from conversions.csv_files import for_import

    # Given a call stored before the lease checked click ids, its gclid a spreadsheet formula
    formula = '=HYPERLINK("https://evil.example/x")'
    odd = call(attribution={"gclid": formula, "yclid": formula})
    # Then no platform gets it, and a stored row carrying one never reaches the spreadsheet
    skips = {d: p.skip for d, p in by_destination(plan(odd, config(), NOW)).items()}
    assert skips["google_ads"] == "no_click_id" and skips["yahoo_ads"] == "no_click_id"
    row = {"destination": "yahoo_ads", "status": "skipped", "reason": "csv_only", "click_id": formula}
    assert for_import([row], "yahoo_ads") == [] and for_import([{**row, "click_id": "YSS.1.a"}], "yahoo_ads")


def test_a_config_stored_with_full_width_ids_is_still_read_with_ascii_ids() -> None:
    from calltrack.accounts import StoredAccount, typed_config

    # Given a config stored before ids had to be ASCII digits, with full-width ones
    stored_ids = {"google_ads": {"customer_id": "１２３-４５６-７８９０", "conversion_action_id": "９８７"},
                  "meta": {"pixel_id": "１２３４５６７", "secret": "meta"},
                  "yahoo_ads": {"account_id": "１２３"}}
    data = {"account": "acme", "forward_to": "+81312345678", "destinations": stored_ids,
            "conversions": [{"name": "x", "destinations": ["meta"], "google_ads_conversion_action_id": "５"}]}
    # When it is read back from storage
    config = typed_config(StoredAccount(account="acme", name="ACME", timezone="Asia/Tokyo", config=data,
                                        config_hash="h", version=1, updated_at=NOW))
    # Then it is readable (every reader of the account would fail otherwise), its ids in ASCII
    assert config.destinations.google_ads.customer_id == "1234567890"
    assert config.destinations.google_ads.conversion_action_id == "987"
    assert config.destinations.meta.pixel_id == "1234567"
    assert config.destinations.yahoo_ads.account_id == "123"
    assert config.conversions[0].google_ads_conversion_action_id == "5"
