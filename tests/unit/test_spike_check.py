"""Missed-call spike check: last full hour, threshold, one message per account-hour (fakes only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops_jobs import spike_check
from tests.support.jobs import JobsWorld

AT = datetime(2026, 11, 24, 4, 5, tzinfo=UTC)  # 13:05 JST: checks 12:00-13:00 JST (03:00-04:00 UTC)


class World(JobsWorld):
    def run(self, at: datetime = AT, force: bool = False) -> dict[str, Any]:
        return self.run_job(spike_check, at, force)


def test_more_misses_than_the_threshold_in_the_last_hour_publish_once() -> None:
    world = World()
    world.add_account("acme", language="ja-JP")
    world.add_calls(
        "acme", datetime(2026, 11, 24, 3, 0, tzinfo=UTC), ["missed"] * 4 + ["busy"] * 2 + ["answered"]
    )
    result = world.run()
    assert result["accounts"]["acme"] == {
        "decided": "published",
        "period": "2026-11-24T03",
        "from": "2026-11-24T03:00:00Z",
        "to": "2026-11-24T04:00:00Z",
        "calls": 7,
        "missed": 6,
        "message_id": "msg-1",
        "subject": "[Acme] 不在着信が急増: 直近1時間で6件 (12時台)",
    }
    _, body, attrs = world.published[0]
    assert "2026-11-24 12:00-13:00 (Asia/Tokyo)" in body
    assert attrs == {
        "account": "acme",
        "kind": "missed-call-spike-check",
        "period": "2026-11-24T03",
        "missed": 6,
        "calls": 7,
    }
    # the same hour checked again (a retry) does not publish twice
    assert world.run(AT + timedelta(minutes=20))["accounts"]["acme"]["decided"] == "already-done"
    assert len(world.published) == 1


def test_at_the_threshold_or_outside_the_hour_is_quiet() -> None:
    world = World()
    world.add_account("calm", alerts={"spike_missed_per_hour": 5})
    world.add_calls("calm", datetime(2026, 11, 24, 3, 30, tzinfo=UTC), ["missed"] * 5)
    world.add_calls("calm", datetime(2026, 11, 24, 4, 0, tzinfo=UTC), ["missed"] * 3)  # current hour
    world.add_calls("calm", datetime(2026, 11, 24, 2, 0, tzinfo=UTC), ["missed"] * 3)  # hour before
    result = world.run()
    assert result["accounts"]["calm"]["decided"] == "nothing-to-say"
    assert result["accounts"]["calm"]["missed"] == 5
    assert world.published == []


def test_threshold_is_per_account() -> None:
    world = World()
    world.add_account("touchy", alerts={"spike_missed_per_hour": 1}, language="en")
    world.add_calls("touchy", datetime(2026, 11, 24, 3, 0, tzinfo=UTC), ["missed", "canceled", "ringing"])
    world.run()
    assert world.published[0][0] == "[Touchy] Missed-call spike: 2 missed in the last hour (12:00)"


# ------------------------------------------------------------------ overdue callbacks (issue 18)

HOURS_FLOW = {"hours": {"mon-fri": "09:00-18:00"}, "targets": {"desk": {"forward": "03-1234-5678"}}}


def _callback_world(**alerts: Any) -> World:
    world = World()
    world.add_account("clinic", language="ja-JP", alerts={"callback_within_minutes": 30, **alerts},
                      flows={"main": HOURS_FLOW}, flow="main")
    return world


def test_open_callbacks_older_than_the_limit_alert_during_business_hours() -> None:
    # Given (13:05 JST, a Tuesday) two missed calls not called back: ended 45 and 10 minutes ago
    world = _callback_world()
    for minutes in (45, 10):
        ended = AT - timedelta(minutes=minutes)
        world.add_call("clinic", ended - timedelta(seconds=20), "missed", callback_open=True, ended_at=ended)
    # and one called back already
    earlier = AT - timedelta(hours=2)
    world.add_call("clinic", earlier, "missed", callback_open=False, ended_at=earlier)
    # When the hourly check runs
    result = world.run()["accounts"]["clinic"]
    # Then one message names the one overdue callback, with the oldest call's local time
    assert result["callbacks_overdue"] == 1
    subject, body, attrs = next(p for p in world.published if p[2]["kind"] == "callbacks-overdue")
    assert subject == "[Clinic] 折り返し待ち: 1件が30分を超えています"
    assert "2026-11-24 12:20 (Asia/Tokyo)" in body and attrs["overdue"] == 1


def test_a_missed_caller_answered_on_a_later_call_is_not_an_overdue_callback() -> None:
    def stored(call_sid: str, caller: str, minutes_ago: int, status: str, **extra: Any) -> dict[str, Any]:
        started = (AT - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"call_sid": call_sid, "caller": caller, "started_at": started, "ended_at": started,
                "status": status, **extra}

    # Given two callers missed 45 minutes ago; the first called again 20 minutes ago and was
    # answered, the second called again and was missed again; and a test call, answered
    world = _callback_world()
    world.add_stored_calls("clinic", [
        stored("CA1", "+819011110000", 45, "missed"), stored("CA2", "+819011110000", 20, "answered"),
        stored("CA3", "+819022220000", 45, "missed"), stored("CA4", "+819022220000", 20, "missed"),
        stored("CA5", "+819022220000", 10, "answered", test=True),
    ])
    # When the hourly check runs
    result = world.run()["accounts"]["clinic"]
    # Then only the second caller's first missed call is overdue: the first caller has been reached
    # (their callback stays open until someone closes it), the test call reaches no one
    assert result["callbacks_overdue"] == 1
    open_ones = [c.call_sid for c in world.calls["clinic"] if c.callback_open]
    assert open_ones == ["CA1", "CA3", "CA4"]


def test_overdue_callbacks_are_quiet_outside_business_hours() -> None:
    # Given the same overdue callback, but the check runs at 20:05 JST (after closing)
    world = _callback_world()
    evening = datetime(2026, 11, 24, 11, 5, tzinfo=UTC)
    ended = evening - timedelta(hours=3)
    world.add_call("clinic", ended, "missed", callback_open=True, ended_at=ended)
    result = world.run(evening)["accounts"]["clinic"]
    assert "callbacks_overdue" not in result
    assert world.published == []


@pytest.mark.parametrize("failing", ["callbacks-overdue", spike_check.JOB])
def test_a_retried_check_publishes_each_message_once_when_one_of_them_failed(failing: str) -> None:
    # Given an hour with a missed-call spike and an overdue callback, and SNS failing one message
    world = _callback_world(spike_missed_per_hour=1)
    ended = AT - timedelta(minutes=45)
    world.add_call("clinic", ended - timedelta(seconds=20), "missed", callback_open=True, ended_at=ended)
    world.add_calls("clinic", AT - timedelta(minutes=40), ["missed", "missed"])
    publish = world.publish

    def one_fails(subject: str, message: str, attributes: dict[str, Any]) -> str:
        if attributes["kind"] == failing:
            raise RuntimeError("SNS throttled")
        return publish(subject, message, attributes)

    world.publish = one_fails  # type: ignore[method-assign]
    assert world.run()["failures"] == 1

    # When the check is retried and SNS works again
    world.publish = publish  # type: ignore[method-assign]
    second = world.run()

    # Then each message went out exactly once: none is repeated by the retry
    assert second["failures"] == 0 and second["accounts"]["clinic"]["decided"] == "published"
    assert sorted(p[2]["kind"] for p in world.published) == ["callbacks-overdue", spike_check.JOB]


def test_a_forced_check_publishes_the_callbacks_message_again() -> None:
    # Given an hour whose overdue-callbacks message went out
    world = _callback_world()
    ended = AT - timedelta(minutes=45)
    world.add_call("clinic", ended - timedelta(seconds=20), "missed", callback_open=True, ended_at=ended)
    world.run()
    # When the operator forces the check of the same hour, Then the message goes out again
    world.run(force=True)
    assert [p[2]["kind"] for p in world.published] == ["callbacks-overdue", "callbacks-overdue"]
