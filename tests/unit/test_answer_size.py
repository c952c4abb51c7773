"""Answers larger than a Lambda function may return are a 400 naming the range, not a platform 5xx."""

from __future__ import annotations

import pytest

from calltrack.api import MAX_ANSWER_BYTES, csv_response, json_response
from calltrack.errors import BadRequest


def test_a_csv_too_large_for_lambda_is_a_400_asking_for_a_shorter_range() -> None:
    # Given a year of calls as CSV: 30,000 rows of 200 bytes
    text = ("CA" + "0" * 32 + "," + "x" * 160 + "\n") * 30_000
    # When it is to be answered, then the caller is told to narrow from/to (it was a 5xx)
    with pytest.raises(BadRequest) as err:
        csv_response(text, "calls.csv")
    assert err.value.field == "from" and "shorter range" in str(err.value)


def test_japanese_text_counts_as_lambda_carries_it_escaped() -> None:
    # Given 1,000,000 Japanese characters: 3 MB as UTF-8, 6 MB as the \\uXXXX escapes Lambda sends
    with pytest.raises(BadRequest):
        json_response({"rows": ["予" * 1_000_000]})
    # And an answer within the limit goes out whole
    ok = json_response({"rows": ["予" * 100_000]})
    assert ok.status_code == 200 and len(str(ok.body)) > 100_000
    assert csv_response("a" * (MAX_ANSWER_BYTES - 100), "x.csv").status_code == 200
