"""Phone numbers: national or E.164 in, E.164 out; bad input names the field; masking."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltrack.errors import BadRequest
from calltrack.phone import DEFAULT_REGION, is_e164, mask, normalize, region_for_timezone
from tests.support import unique_number


@pytest.mark.parametrize(
    "raw,region,expected",
    [
        ("+81312345678", "JP", "+81312345678"),
        ("03-1234-5678", "JP", "+81312345678"),
        (
            "０３１２３４５６７８".translate(str.maketrans("０１２３４５６７８９", "0123456789")),
            "JP",
            "+81312345678",
        ),
        ("(415) 555-2671", "US", "+14155552671"),
        (" +1 415 555 2671 ", "JP", "+14155552671"),
    ],
)
def test_normalize_accepts_national_and_international_formats(raw, region, expected):
    assert normalize(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "   ", "hello", "+81", "1" * 41])
def test_normalize_rejects_non_numbers_naming_the_field(raw):
    with pytest.raises(BadRequest) as err:
        normalize(raw, "JP", field="numbers[0].number")
    assert "numbers[0].number" in str(err.value)


def test_mask_keeps_only_the_last_four_digits():
    assert mask("+81312345678") == "+*******5678"
    assert mask("5678") == "****"
    assert mask(None) == ""
    assert mask("") == ""


@given(st.from_regex(r"\+[1-9]\d{9,13}", fullmatch=True))
def test_mask_never_reveals_more_than_four_digits(number):
    masked = mask(number)
    assert sum(ch.isdigit() for ch in masked) == 4
    assert masked.endswith(number[-4:])


def test_is_e164():
    assert is_e164("+81312345678")
    assert not is_e164("0312345678")
    assert not is_e164("+0123456789")


@pytest.mark.parametrize(
    "tz,region",
    [
        ("Asia/Tokyo", "JP"),
        ("America/New_York", "US"),
        ("Europe/London", "GB"),
        ("Europe/Paris", "FR"),  # was JP before tzdata's zone table
        ("Asia/Shanghai", "CN"),
        ("Japan", "JP"),  # backward links are followed
        ("US/Eastern", "US"),
    ],
)
def test_region_for_timezone_comes_from_the_tzdata_zone_table(tz, region):
    assert region_for_timezone(tz) == region


@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "Etc/GMT-9", "Not/AZone", ""])
def test_zones_of_no_country_fall_back_to_the_default_region(tz):
    assert region_for_timezone(tz) == DEFAULT_REGION == "JP"


def test_a_paris_number_in_national_format_is_french():
    assert normalize("01 42 68 53 00", region_for_timezone("Europe/Paris")) == "+33142685300"


def test_unique_numbers_from_the_test_support_are_possible_and_distinct():
    numbers = {unique_number() for _ in range(200)}
    assert len(numbers) == 200
    for n in list(numbers)[:20]:
        assert phonenumbers.is_possible_number(phonenumbers.parse(n, None))
        assert normalize(n) == n


def test_e164_means_ascii_digits() -> None:
    from calltrack.phone import is_e164

    # Given a number written with full-width digits (as an IME types them)
    # Then it is not E.164 (phone.normalize turns it into one)
    assert is_e164("+81312345678") and not is_e164("+8１３１２３４５６７８")
