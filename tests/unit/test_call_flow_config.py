"""Call flows in the account config (issue 18): what `calltrack apply` accepts, what it refuses
(naming the field), and the compiled flow each tracking number's routing row carries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from calltrack import clock
from calltrack.account_config import ConfigError, normalize_config, parse_config, tracking_rows
from tests.support.accounts import account_config

MEMBERS = [{"agent": "tanaka", "number": "090-1111-2222"}, {"agent": "suzuki", "number": "090-3333-4444"}]


YEARS = range(2026, 2030)  # four years of closed days: more than a flow may hold


def issue_flow(**over: Any) -> dict[str, Any]:
    return {
        "hours": {"mon-fri": "09:00-18:00", "sat": "09:00-13:00", "holidays": "jp",
                  "closed": [date(2026, 12, 29), "2027-01-03"]},
        "menu": {"prompt": "ご予約は1を", "options": {"1": "reception", "2": "office"},
                 "timeout_to": "reception"},
        "targets": {
            "reception": {"ring_group": {"strategy": "round_robin", "ring_seconds": 20, "members": MEMBERS}},
            "office": {"forward": "03-1234-5678"},
        },
        "after_hours": {"voicemail": True, "message": "本日の受付は終了しました。"},
        **over,
    }


def config(**over: Any) -> dict[str, Any]:
    return account_config(
        "clinic", flows={"main": issue_flow()},
        numbers=[{"number": "050-1234-0001", "channel": "newspaper", "flow": "main"},
                 {"number": "050-1234-0002", "channel": "flyer"}],
        test_callers=["090-9999-0000"], **over,
    )


def test_the_issues_flow_is_compiled_into_the_numbers_routing_row_with_the_holidays():
    # Given the issue's example applied on 2026-11-30 (Tokyo)
    with clock.frozen(datetime(2026, 11, 30, tzinfo=UTC)):
        rows = tracking_rows(normalize_config(parse_config(config())))
    routing = rows["+815012340001"]["routing"]
    flow = routing["flow"]
    # Then the number carries its flow: hours in minutes, members in E.164, holidays from the library
    assert flow["name"] == "main" and flow["first"] == "reception"
    assert flow["open"]["0"] == [[540, 1080]] and flow["open"]["5"] == [[540, 780]]
    assert flow["open"]["6"] == []
    assert flow["closed"] == ["2026-12-29", "2027-01-03"]
    assert {"2026-11-23", "2027-01-11", "2028-01-01"} <= set(flow["holidays"])
    assert flow["holidays_through"] == "2028-12-31"
    members = flow["targets"]["reception"]["ring_group"]["members"]
    assert [m["number"] for m in members] == ["+819011112222", "+819033334444"]
    assert flow["targets"]["office"] == {"forward": "+81312345678"}
    assert routing["test_callers"] == ["+819099990000"]
    # And a number without a flow (and no account default) forwards as before
    assert "flow" not in rows["+815012340002"]["routing"]


def test_the_account_default_flow_applies_to_numbers_without_their_own():
    rows = tracking_rows(normalize_config(parse_config(config(flow="main"))))
    assert rows["+815012340002"]["routing"]["flow"]["name"] == "main"


@pytest.mark.parametrize(
    ("flow", "field", "words"),
    [
        (issue_flow(targets={"a": {}}), "flows.main.targets.a", "either forward"),
        (issue_flow(menu={"prompt": "x", "options": {"1": "z"}}), "flows.main.menu.options.1", "no target"),
        (issue_flow(after_hours={"target": "night"}), "flows.main.after_hours.target", "no target"),
        (issue_flow(hours={"mon-fri": "18:00-09:00"}), "flows.main.hours", "ends before it starts"),
        (issue_flow(hours={"mon-fri": "9-18"}), "flows.main.hours", "not a time span"),
        (issue_flow(hours={"fri-mon": "09:00-18:00"}), "flows.main.hours", "first day"),
        (issue_flow(hours={"holidays": "zz"}), "flows.main.hours", "no public holidays"),
        (issue_flow(hours={"closed": ["2026-02-30"]}), "flows.main.hours", "not a date"),
        # hours that open on no day would send every call after hours (2026-12-03)
        (issue_flow(hours={"sun": "closed", "holidays": "jp"}), "flows.main.hours",
         "no day has opening hours"),
        (issue_flow(hours={"closed": ["2026-12-31"]}), "flows.main.hours", "no day has opening hours"),
        (issue_flow(hours={}), "flows.main.hours", "no day has opening hours"),
        (issue_flow(hours={"week": {"sat": []}}), "flows.main.hours", "no day has opening hours"),
        (issue_flow(hours={"weekdays": "09:00-18:00"}), "flows.main.hours", "unknown key"),
        # spoken text with a control character would make TwiML that is not XML: every call fails
        (issue_flow(menu={"prompt": "押して\x0bください", "options": {"1": "office"}}),
         "flows.main.menu.prompt", "U+000B"),
        (issue_flow(after_hours={"message": "閉店\x00"}), "flows.main.after_hours.message", "U+0000"),
        # the stored shape, sent to the API as it is, gets the same checks
        (issue_flow(hours={"week": {"mon": [["18:00", "09:00"]]}}), "flows.main.hours", "not a time span"),
        (issue_flow(hours={"week": {"mon-fri": [["09:00", "18:00"]]}}), "flows.main.hours", "not a day"),
        (issue_flow(hours={"week": {}, "holidays": "zz"}), "flows.main.hours", "no public holidays"),
        (issue_flow(hours={"week": {"mon": [7]}}), "flows.main.hours", "not a time span"),
        (issue_flow(hours={"week": {}, "closed": ["2026-02-30"]}), "flows.main.hours", "not a date"),
        # closed dates are copied into every number row: at most about three years of them
        (issue_flow(hours={"mon-fri": "09:00-18:00", "closed": [f"{y}-01-01..{y}-12-31" for y in YEARS]}),
         "flows.main.hours", "at most 1100"),
    ],
)
def test_a_bad_flow_is_refused_naming_the_field(flow, field, words):
    with pytest.raises(ConfigError) as err:
        parse_config(account_config("clinic", flows={"main": flow}))
    assert any(e.startswith(field) and words in e for e in err.value.errors), err.value.errors


def test_a_ring_group_has_at_most_ten_members_each_agent_once():
    eleven = [{"agent": f"a{i}", "number": f"090-1111-{2200 + i}"} for i in range(11)]
    for members in (eleven, MEMBERS + MEMBERS[:1]):
        flow = issue_flow(targets={"desk": {"ring_group": {"members": members}}}, menu=None)
        with pytest.raises(ConfigError) as err:
            parse_config(account_config("clinic", flows={"main": flow}))
        assert err.value.field.startswith("flows.main.targets.desk.ring_group.members")


def test_unknown_flow_names_are_refused_where_they_are_used():
    bad = account_config("clinic", flow="nope", numbers=[{"number": "050-1234-0001", "channel": "flyer",
                                                           "flow": "gone"}])
    with pytest.raises(ConfigError) as err:
        parse_config(bad)
    assert "flow: no flow 'nope' in flows" in err.value.errors
    assert "numbers[0].flow: no flow 'gone' in flows" in err.value.errors


def test_closed_ranges_expand_to_each_date():
    flow = issue_flow(hours={"mon-fri": "09:00-18:00", "closed": ["2026-12-29..2027-01-03"]})
    stored = normalize_config(parse_config(account_config("clinic", flows={"main": flow})))
    assert stored["flows"]["main"]["hours"]["closed"] == [
        "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02", "2027-01-03"]
    # the stored shape validates again as it is (a stored config read back)
    assert normalize_config(parse_config(stored)) == stored


def test_closed_dates_in_other_iso_spellings_are_stored_as_the_dates_calls_are_compared_with():
    # Given closed dates as an unquoted YAML number and an ISO week date (both dates to Python)
    flow = issue_flow(hours={"mon-fri": "09:00-18:00", "closed": [20261231, "2027-W01-5"]})
    stored = normalize_config(parse_config(account_config("clinic", flows={"main": flow})))
    # Then they are stored as YYYY-MM-DD, the text a call's local date is compared with (they
    # were stored as written, and calls on those days were put through)
    assert stored["flows"]["main"]["hours"]["closed"] == ["2026-12-31", "2027-01-08"]


def test_applying_the_same_flow_in_a_new_year_is_a_change_so_the_holidays_move_on():
    from calltrack.account_config import config_hash

    stored = normalize_config(parse_config(config()))
    with clock.frozen(datetime(2026, 11, 30, tzinfo=UTC)):
        this_year = config_hash(stored)
        assert config_hash(stored) == this_year  # the same day: unchanged
    with clock.frozen(datetime(2027, 1, 2, tzinfo=UTC)):
        assert config_hash(stored) != this_year
        rows = tracking_rows(stored)
    assert rows["+815012340001"]["routing"]["flow"]["holidays_through"] == "2029-12-31"
    # a config without holidays keeps its hash from year to year
    plain = normalize_config(parse_config(account_config("clinic")))
    with clock.frozen(datetime(2026, 11, 30, tzinfo=UTC)):
        before = config_hash(plain)
    with clock.frozen(datetime(2027, 1, 2, tzinfo=UTC)):
        assert config_hash(plain) == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("whisper", "広告\x1bから"),
        ("recording", {"enabled": True, "announcement": "録音\x07します"}),
        # U+FFFE / U+FFFF are not XML 1.0 characters either
        ("recording", {"enabled": True, "announcement": "録音します\uffff"}),
        # a campaign is spoken too, in a whisper that names it ("{campaign}")
        ("numbers", [{"number": "+815012340009", "channel": "flyer", "campaign": "spring\x0bsale"}]),
    ],
)
def test_spoken_account_text_with_a_control_character_is_refused(key, value):
    with pytest.raises(ConfigError) as err:
        parse_config(account_config("clinic", **{key: value}))
    assert err.value.field.startswith(key) and "cannot be spoken" in str(err.value.errors)


def test_a_character_xml_cannot_carry_never_reaches_a_say_even_from_a_config_stored_before():
    from xml.etree import ElementTree as ET

    from calltrack.twilio_edge import say_twiml

    twiml = say_twiml("spring\x0bsale\uffffからのお電話です")
    assert ET.fromstring(twiml).find("Say").text == "springsaleからのお電話です"  # well-formed


def test_an_infinite_alert_ratio_is_refused():
    # an Infinity would be stored and then answered as JSON no browser can parse
    with pytest.raises(ConfigError) as err:
        parse_config(account_config("clinic", alerts={"missed_vs_baseline": float("inf")}))
    assert err.value.field.startswith("alerts.missed_vs_baseline")


def test_a_flow_that_rings_one_of_the_accounts_own_tracking_numbers_is_refused():
    # Given a flow whose target forwards to a tracking number of the same account (a loop)
    targets = {"reception": {"forward": "050-1234-0002"}, "office": {"forward": "03-1234-5678"}}
    flow = issue_flow(targets=targets)
    bad = config()
    bad["flows"] = {"main": flow}
    # When it is applied, Then it is refused naming the target
    with pytest.raises(ConfigError) as err:
        parse_config(bad)
    assert err.value.field == "flows.main.targets.reception.forward"
    assert "calls would loop" in str(err.value.errors)


def test_a_config_stored_before_a_check_existed_still_reads_back():
    from datetime import datetime as _dt
    from datetime import timedelta as _td

    from calltrack.accounts import StoredAccount, typed_config

    # Given a config stored before the closed-dates cap and the spoken-text check
    stored = normalize_config(parse_config(config()))
    start = date(2026, 1, 1)
    stored["flows"]["main"]["hours"]["closed"] = [(start + _td(days=i)).isoformat() for i in range(1200)]
    stored["flows"]["main"]["after_hours"]["message"] = "閉店\x0bしました"
    row = StoredAccount(account="clinic", name="Clinic", timezone="Asia/Tokyo", config=stored,
                        config_hash="x", version=1, updated_at=_dt(2026, 1, 1))
    # When a function reads it, Then it reads (the checks apply when a config is written)
    assert len(typed_config(row).flows["main"].hours.closed) == 1200  # type: ignore[union-attr]
    # while writing it again is refused, naming the field
    with pytest.raises(ConfigError):
        parse_config(stored)


@pytest.mark.parametrize(
    ("zone", "language", "spoken"),
    [("America/New_York", None, "en-US"), ("Europe/Paris", None, "en-US"), ("Asia/Tokyo", None, "ja-JP"),
     ("UTC", None, "ja-JP"), ("America/New_York", "ja-JP", "ja-JP"), ("Asia/Tokyo", "en-US", "en-US")],
)
def test_without_a_language_callers_hear_japanese_in_a_japanese_zone_else_english(zone, language, spoken):
    # (a New York account's callers heard Japanese prompts: the default was ja-JP everywhere)
    written = {"timezone": zone, **({"language": language} if language else {})}
    stored = normalize_config(parse_config(account_config("clinic", **written)))
    assert stored["language"] == spoken
    # and the stored config reads back the same
    assert normalize_config(parse_config(stored)) == stored
