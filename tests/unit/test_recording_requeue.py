"""`POST /v1/recordings/retry` page by page: the time budget per row and the sealed cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from recording_ingest.requeue import BadCursor, CursorSeal, requeue_pages

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def rows(*sids: str) -> list[dict[str, Any]]:
    return [{"recording_sid": s, "call_sid": "CA" + s[2:], "status": "retrying", "reason": "http-500"}
            for s in sids]


def key(sid: str) -> dict[str, Any]:
    return {"recording_sid": {"S": sid}}


def test_the_time_budget_is_checked_after_every_row_and_the_position_is_the_last_row_requeued() -> None:
    # Given two pages, and time running out after the second row
    pages = [(rows("RE1", "RE2", "RE3"), key("REx")), (rows("RE4"), None)]
    sent: list[str] = []
    ticks = iter([False, True])
    # When the rows are requeued
    counts, position = requeue_pages(iter(pages), sent.append, lambda row, at: None,
                                     twilio_account_sid="AC1", now=NOW, out_of_time=lambda: next(ticks))
    # Then it stopped inside the page, after RE2, and goes on from RE2
    assert counts == {"requeued": 2, "skipped": 0} and len(sent) == 2
    assert position == key("RE2")


def test_the_last_row_of_the_last_page_needs_no_position() -> None:
    counts, position = requeue_pages(iter([(rows("RE1"), None)]), lambda b: None, lambda r, a: None,
                                     twilio_account_sid="AC1", now=NOW, out_of_time=lambda: True)
    assert counts["requeued"] == 1 and position is None


def test_a_cursor_is_sealed_opens_only_for_its_request_and_hides_the_position() -> None:
    seal = CursorSeal("ct_operator_secret")
    cursor = seal.seal(key("RE0123456789abcdef"), "acme", "2026-11-01")
    # the position is not readable from the cursor (it may be another account's recording)
    assert "RE0123456789abcdef" not in cursor and "acme" not in cursor
    assert seal.open(cursor, "acme", "2026-11-01") == key("RE0123456789abcdef")
    # another account, another since, another stack's key, a changed byte: 400 naming cursor
    for opener, account, since in ((seal, "other", "2026-11-01"), (seal, "acme", None),
                                   (CursorSeal("another stack"), "acme", "2026-11-01")):
        with pytest.raises(BadCursor) as err:
            opener.open(cursor, account, since)
        assert err.value.field == "cursor"
    tampered = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    with pytest.raises(BadCursor):
        seal.open(tampered, "acme", "2026-11-01")
    with pytest.raises(BadCursor):
        seal.open("not-base64!", "acme", "2026-11-01")
