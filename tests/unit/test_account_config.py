"""The account config model: validation messages name the field, defaults are filled, numbers are E.164."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltrack.account_config import (
    ConfigError,
    config_hash,
    normalize_config,
    parse_config,
    tracking_rows,
)
from tests.support.accounts import account_config


def _base(**extra: Any) -> dict[str, Any]:
    """ACME Dental with recording, a whisper, one flyer number and a google-ads pool."""
    defaults: dict[str, Any] = {
        "name": "ACME Dental",
        "recording": {"enabled": True, "announcement": "この通話は録音されます。"},
        "whisper": "{channel}からのお電話です",
        "numbers": [{"number": "+81312340001", "channel": "flyer", "campaign": "2026-11-insert"}],
        "pools": [
            {
                "id": "google-ads",
                "channel": "google-ads",
                "match": {"utm_source": "google"},
                "lease_minutes": 30,
                "numbers": ["+81312340101", "+81312340102"],
            }
        ],
    }
    return account_config(**{"account": "acme-dental", **defaults, **extra})


def _error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    return err.value


# --------------------------------------------------------------------------- accepted


def test_the_issue_example_is_valid_and_stored_with_every_default():
    stored = normalize_config(parse_config(_base()))
    assert stored["language"] == "ja-JP"
    assert stored["ring_timeout"] == 20 and stored["voicemail"] is False
    assert stored["recording"] == {
        "enabled": True,
        "announcement": "この通話は録音されます。",
        "retention_days": None,
        "delete_from_twilio": False,
    }
    assert stored["numbers"][0] == {
        "number": "+81312340001",
        "channel": "flyer",
        "campaign": "2026-11-insert",
        "medium": None,
        "flow": None,
    }
    pool = stored["pools"][0]
    assert pool["match"] == {
        "utm_source": ["google"],
        "utm_medium": None,
        "utm_campaign": None,
        "click_ids": [],
        "referrer_domains": [],
    }
    assert pool["overflow_number"] is None and pool["campaign"] is None
    assert stored["site"] is None
    assert stored["dni"] == {"late_call_window_minutes": 120, "cookie_days": 30, "wait_for_consent": False,
                            "max_numbers_per_address": None}
    assert stored["alerts"] == {
        "answer_rate_below": 0.85,
        "missed_vs_baseline": 1.5,
        "min_missed": 5,
        "spike_missed_per_hour": 5,
        "callback_within_minutes": 60,
    }
    assert stored["review"] == {
        "lead_rate_high": 0.3,
        "lead_rate_low": 0.1,
        "sample_size": 5,
        "trial_sample_calls": 50,
        "qualified_score": None,
        "won_value_per_call_high": None,
        "pass_score": 70,
    }
    assert stored["crm"] == {"match_window_days": 7}
    assert stored["transcription"] == {"enabled": False, "min_talk_seconds": 20}
    assert stored["call_rules"] == []
    assert stored["flows"] == {} and stored["flow"] is None and stored["test_callers"] == []


def test_name_defaults_to_the_account_id():
    data = _base()
    del data["name"]
    assert normalize_config(parse_config(data))["name"] == "acme-dental"


def test_national_format_numbers_use_the_region_of_the_time_zone():
    jp = parse_config(_base(forward_to="03-1234-5678"))
    assert jp.forward_to == "+81312345678"
    us = parse_config(_base(timezone="America/New_York", forward_to="(212) 555-0100"))
    assert us.forward_to == "+12125550100"
    fr = parse_config(_base(timezone="Europe/Paris", forward_to="01 42 68 53 00"))
    assert fr.forward_to == "+33142685300"


def test_every_static_pool_and_overflow_number_becomes_a_routable_row():
    data = _base()
    data["pools"][0]["overflow_number"] = "+81312340199"
    rows = tracking_rows(normalize_config(parse_config(data)))
    assert set(rows) == {"+81312340001", "+81312340101", "+81312340102", "+81312340199"}
    assert rows["+81312340001"]["kind"] == "static" and rows["+81312340001"]["pool"] is None
    assert rows["+81312340199"]["kind"] == "pool" and rows["+81312340199"]["pool"] == "google-ads"
    assert rows["+81312340101"]["routing"] == {
        "forward_to": "+81312345678",
        "language": "ja-JP",
        "timezone": "Asia/Tokyo",
        "recording": {"enabled": True, "announcement": "この通話は録音されます。"},
        "whisper": "google-adsからのお電話です",
        "ring_timeout": 20,
        "voicemail": False,
        "calls_days": 1095,
    }


def test_the_hash_ignores_how_numbers_were_written_but_not_what_they_are():
    e164 = config_hash(normalize_config(parse_config(_base(forward_to="+81312345678"))))
    national = config_hash(normalize_config(parse_config(_base(forward_to="03-1234-5678"))))
    other = config_hash(normalize_config(parse_config(_base(forward_to="03-1234-5679"))))
    assert e164 == national != other


def test_the_monthly_review_keys_are_accepted():
    review = {"qualified_score": 70, "won_value_per_call_high": 5000}
    stored = normalize_config(parse_config(_base(review=review)))
    assert stored["review"]["qualified_score"] == 70 and stored["review"]["won_value_per_call_high"] == 5000
    assert stored["review"]["lead_rate_high"] == 0.3


@pytest.mark.parametrize(
    ("review", "field"),
    [
        ({"qualified_score": 101}, "review.qualified_score"),
        ({"qualified_score": -1}, "review.qualified_score"),
        ({"qualified_score": "high"}, "review.qualified_score"),
        ({"won_value_per_call_high": -0.5}, "review.won_value_per_call_high"),
        ({"won_value_per_call_high": float("inf")}, "review.won_value_per_call_high"),
    ],
)
def test_out_of_range_review_keys_are_refused_naming_the_field(review, field):
    err = _error(_base(review=review))
    assert err.message.startswith(f"{field}: ") and err.field == field


def test_labels_read_by_yaml_as_numbers_stay_text():
    data = _base()
    data["numbers"][0]["campaign"] = 2026
    assert parse_config(data).numbers[0].campaign == "2026"


# --------------------------------------------------------------------------- refused, naming the field


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["numbers"][0].update(number="12345"), "numbers[0].number: not a phone number"),
        (lambda d: d["pools"][0]["numbers"].append("abc"), "pools[0].numbers[2]: not a phone number"),
        (lambda d: d.update(forward_to=81312345678), "forward_to: phone numbers must be quoted strings"),
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (lambda d: d["pools"][0]["match"].update(utm_sorce="g"), "pools[0].match.utm_sorce: unknown key"),
        (lambda d: d["recording"].update(enable=True), "recording.enable: unknown key"),
        (lambda d: d.pop("forward_to"), "forward_to: required"),
        (lambda d: d.update(account="Acme Dental"), "account: must be a slug"),
        (lambda d: d.update(timezone="Asia/Tokio"), "timezone: not a time zone name"),
        (lambda d: d.update(timezone="../../etc/passwd"), "timezone: not a time zone name"),
        (lambda d: d.update(whisper="{caller} calling"), "whisper: unknown placeholder {caller}"),
        (lambda d: d.update(ring_timeout=2), "ring_timeout:"),
        (lambda d: d["numbers"][0].update(channel="Google Ads"), "numbers[0].channel: channel must be"),
        (lambda d: d["pools"][0].update(numbers=[]), "pools[0].numbers:"),
        (lambda d: d.update(site={"origins": ["www.acme.jp"]}), "site.origins: not an origin"),
        (lambda d: d["pools"][0]["match"].update(referrer_domains=["https://google.com/"]), "not a domain"),
    ],
)
def test_invalid_configs_are_refused_naming_the_field(mutate, message):
    data = copy.deepcopy(_base())
    mutate(data)
    err = _error(data)
    assert message in err.message
    assert err.status == 400


def test_every_problem_is_reported_at_once():
    data = _base(colour="blue")
    data["numbers"][0]["number"] = "x"
    err = _error(data)
    assert {e.split(":")[0] for e in err.errors} == {"numbers[0].number", "colour"}
    assert err.body()["errors"] == err.errors


def test_a_number_listed_twice_is_refused_naming_both_places():
    data = _base()
    data["pools"][0]["numbers"].append("03-1234-0001")  # the flyer number, national format
    err = _error(data)
    assert err.message == "pools[0].numbers[2]: +81312340001 is listed twice (also at numbers[0].number)"
    assert err.field == "pools[0].numbers[2]"


def test_forwarding_to_a_tracking_number_is_refused():
    err = _error(_base(forward_to="+81312340101"))
    assert err.message.startswith("forward_to: +81312340101 is also a tracking number")


def test_duplicate_pool_ids_are_refused():
    data = _base()
    data["pools"].append({"id": "google-ads", "channel": "google-ads", "numbers": ["+81312340201"]})
    assert "pools[1].id: pool id 'google-ads' is used twice" in _error(data).message


@pytest.mark.parametrize("data", [[], "account: x", None, 3])
def test_a_document_that_is_not_a_mapping_is_refused(data):
    assert "expected a mapping" in _error(data).message


# --------------------------------------------------------------------------- property


_JP_PREFIXES = st.sampled_from(["03", "06", "045", "050", "070", "080", "090"])


@st.composite
def jp_national_numbers(draw: Any) -> str:
    prefix = draw(_JP_PREFIXES)
    length = 10 if prefix in ("03", "06", "045") else 11  # area codes: 10 digits; 0X0: 11
    first = draw(st.sampled_from("123456789"))
    rest = draw(st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    return prefix + first + rest


@given(national=jp_national_numbers(), separator=st.sampled_from(["", "-", " "]))
def test_any_national_jp_number_round_trips_to_e164(national, separator):
    # Given a Japanese number in national format, written with or without separators
    written = separator.join([national[:3], national[3:7], national[7:]])
    # When it is a tracking number in a Tokyo account
    stored = normalize_config(parse_config(_base(numbers=[{"number": written, "channel": "flyer"}])))
    e164 = stored["numbers"][0]["number"]
    # Then it is stored as +81 followed by the national number without its trunk 0
    assert e164 == "+81" + national[1:]
    # And the stored form validates to itself (normalisation is idempotent)
    again = normalize_config(parse_config(_base(numbers=[{"number": e164, "channel": "flyer"}])))
    assert again["numbers"][0]["number"] == e164


@given(st.text(max_size=30))
def test_arbitrary_text_as_a_number_is_either_e164_or_a_field_error(text):
    try:
        stored = normalize_config(parse_config(_base(numbers=[{"number": text, "channel": "flyer"}])))
    except ConfigError as err:
        assert err.field is not None
        assert all(e.split(":")[0] for e in err.errors)
    else:
        assert stored["numbers"][0]["number"].startswith("+")


def test_retention_defaults_and_relations():
    from calltrack.account_config import effective_retention

    assert effective_retention(parse_config(_base())).calls == 1095
    legacy = parse_config({**_base(), "recording": {"enabled": True, "retention_days": 90}})
    assert effective_retention(legacy).recordings == 90 and effective_retention(legacy).transcripts == 90
    forever = parse_config({**_base(), "retention": {"calls_days": None}})
    assert effective_retention(forever).recordings is None


def test_retention_conflicts_name_the_field():
    err = _error({**_base(), "recording": {"retention_days": 90}, "retention": {"recordings_days": 30}})
    assert err.field == "retention.recordings_days"
    err = _error({**_base(), "retention": {"calls_days": 30, "transcripts_days": 60}})
    assert err.field == "retention.transcripts_days"
    err = _error({**_base(), "retention": {"recordings_days": 30, "transcripts_days": 60}})
    assert err.field == "retention.transcripts_days"


@pytest.mark.parametrize(
    ("written", "browser_sends"),
    [
        ("https://www.acme.jp:443", "https://www.acme.jp"),  # the default port: browsers leave it out
        ("http://acme.jp:80/", "http://acme.jp"),
        ("https://例え.jp", "https://xn--r8jz45g.jp"),  # an internationalised domain: punycode
        ("HTTPS://WWW.Acme.JP", "https://www.acme.jp"),
        ("https://acme.jp:8443", "https://acme.jp:8443"),  # another port stays
    ],
)
def test_site_origins_are_stored_as_browsers_send_them_so_dni_leases_are_allowed(written, browser_sends):
    from dni_lease.service import origin_allowed

    config = normalize_config(parse_config(account_config("clinic", site={"origins": [written]})))
    assert config["site"]["origins"] == [browser_sends]
    assert origin_allowed(config, browser_sends)


@pytest.mark.parametrize("written", ["https://user:pw@acme.jp", "https://acme.jp:99999"])
def test_an_origin_no_browser_sends_is_refused_naming_it(written):
    with pytest.raises(ConfigError) as err:
        parse_config(account_config("clinic", site={"origins": [written]}))
    assert err.value.field.startswith("site.origins") and "not an origin" in str(err.value.errors)


def test_a_config_stored_before_the_origin_and_number_checks_still_reads():
    from datetime import UTC, datetime

    from calltrack.accounts import StoredAccount, typed_config

    # Given a config stored with an origin carrying user info and an infinite alert ratio (both
    # refused when written now)
    config = account_config("clinic", site={"origins": ["https://user@acme.jp"]},
                            alerts={"missed_vs_baseline": float("inf")})
    stored = StoredAccount(account="clinic", name="c", timezone="Asia/Tokyo", config=config, config_hash="h",
                           version=1, updated_at=datetime(2026, 11, 1, tzinfo=UTC))
    # When a function reads it, Then it reads (the account keeps working), the ratio as the default
    typed = typed_config(stored)
    assert typed.site.origins == ["https://user@acme.jp"] and typed.alerts.missed_vs_baseline == 1.5
