"""Caller erasure waits for the number's calls to be written to the end (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from privacy.callers import _still_written

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_call_without_an_end_holds_the_erasure_for_its_longest_length_then_releases_it() -> None:
    # A call whose end never arrived (its callbacks lost) holds erasure for Twilio's longest call
    # after its ringing and menu, plus the callbacks' settling time, and no longer
    assert _still_written([{"started_at": stamp(NOW - timedelta(hours=4, minutes=35))}], NOW) is not None
    assert _still_written([{"started_at": stamp(NOW - timedelta(hours=4, minutes=45))}], NOW) is None
    # A call that ended five minutes ago still holds it (its recording is on its way); a year-old
    # one never does
    recent = {"started_at": stamp(NOW - timedelta(minutes=9)), "ended_at": stamp(NOW - timedelta(minutes=5))}
    assert _still_written([recent], NOW) is not None
    old = {"started_at": "2025-12-01T00:00:00Z", "ended_at": "2025-12-01T00:05:00Z"}
    assert _still_written([old], NOW) is None


def test_odd_timestamps_never_fail_the_request() -> None:
    # A stored time without its zone, or not a time at all, is ignored (it was a 500 on the former)
    assert _still_written([{"started_at": "2026-12-01T11:00:00"}, {"started_at": "soon"}], NOW) is None


def test_national_numbers_are_read_in_the_accounts_region_or_in_japan_when_its_config_is_unreadable():
    from types import SimpleNamespace

    from privacy.callers import account_region

    class Accounts:
        def __init__(self, outcome: object) -> None:
            self.outcome = outcome

        def get(self, account: str) -> object:
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return self.outcome

    assert account_region(Accounts(SimpleNamespace(timezone="America/Los_Angeles")), "us") == "US"
    # a stored config that no longer validates raised its validation error: a 500 on export and erase
    assert account_region(Accounts(ValueError("forward_to: not a number")), "broken") == "JP"
    from calltrack.accounts import UnknownAccount

    assert account_region(Accounts(UnknownAccount("gone")), "gone") == "JP"


def test_an_accounts_read_that_fails_is_not_read_as_a_japanese_account():
    import botocore.exceptions
    import pytest

    from privacy.callers import account_region

    class Throttled:
        def get(self, account: str) -> object:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "GetItem")

    # Given a New York account whose config read is throttled, then the error goes up (503 to
    # retry) instead of "202-555-0123" being erased as +81 2025550123: nobody, answered 200
    with pytest.raises(botocore.exceptions.ClientError):
        account_region(Throttled(), "nyc")
