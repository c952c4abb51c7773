"""Logs are JSON with a correlation id, and phone numbers never reach them unmasked."""

from __future__ import annotations

import io
import json

from calltrack.observability import make_logger, redact_phone_numbers


def _capture(service: str = "test"):
    stream = io.StringIO()
    logger = make_logger(service)
    logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    return logger, stream


def test_redaction_masks_e164_and_national_numbers():
    text = "from +81312345678 to 0312345678 ok"
    out = redact_phone_numbers(text)
    assert "+81312345678" not in out and "0312345678" not in out
    assert out.endswith("5678 ok")


def test_redaction_leaves_ids_timestamps_and_amounts_alone():
    text = "CA0123456789abcdef call 2026-11-25T09:00:00Z value 1200000 sid=RE1234567890"
    assert redact_phone_numbers(text) == text


def test_log_lines_are_json_with_correlation_id_and_no_caller_number():
    logger, stream = _capture()
    logger.set_correlation_id("req-123")
    logger.info("incoming call", extra={"form": {"From": "+81312345678", "CallSid": "CA1"}})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["correlation_id"] == "req-123"
    assert line["message"] == "incoming call"
    assert "+81312345678" not in json.dumps(line)
    assert line["form"]["CallSid"] == "CA1"


def test_redaction_masks_url_encoded_and_hyphenated_numbers():
    # Given a Twilio form body as it arrives (the + is %2B) and a number written the Japanese way
    text = "From=%2B819012345678&To=%2b81312345678 tel 090-1234-5678 or 03-1234-5678 or +81 90-1234-5678"

    # When it is redacted
    out = redact_phone_numbers(text)

    # Then no caller number survives in any spelling, and the last four digits stay for support
    for number in ("819012345678", "81312345678", "090-1234-5678", "03-1234-5678", "1234-5678", "90-1234"):
        assert number not in out
    assert "5678&To=" in out and out.endswith("5678")


def test_redaction_leaves_uuids_and_dates_with_hyphens_alone():
    text = "call 01234567-0123-4567-0123-456789012345 on 2026-12-01 at 0120-12"
    assert redact_phone_numbers(text) == text
