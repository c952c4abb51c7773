"""Weekly unanswered-call alert: the rule, the message, idempotency and partial failure (fakes only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ops_jobs import weekly_alert
from tests.support.accounts import account_config
from tests.support.jobs import JobsWorld
from tests.support.times import TOKYO, tokyo

# Monday 2026-11-30 09:00 JST; the week reported is Mon 2026-11-23 .. Sun 2026-11-29 (local).
RUN = datetime(2026, 11, 30, 9, 0, tzinfo=TOKYO).astimezone(UTC)


class FakeWorld(JobsWorld):
    def run(self, at: datetime = RUN, force: bool = False) -> dict[str, Any]:
        return self.run_job(weekly_alert, at, force)


def healthy_history(world: FakeWorld, account: str, *, last_week: bool = False, per_week: int = 20) -> None:
    """Four baseline weeks (and optionally last week) with 1 missed call each out of ``per_week``."""
    for w in range(0 if last_week else 1, 5):
        for i in range(per_week):
            when = tokyo(11, 23, 10) - timedelta(weeks=w) + timedelta(hours=i)
            world.add_call(account, when, "missed" if i == 0 else "answered")


def tuesday_noon_misses(world: FakeWorld, account: str) -> None:
    """Last week: 40 calls, 12 unanswered, 8 of them on Tuesday 12:xx, answer rate 70%."""
    for i in range(28):
        world.add_call(account, tokyo(11, 23 + i % 7, 10 + i % 6), "answered")
    for i in range(8):
        world.add_call(account, tokyo(11, 24, 12, 5 * i), "missed" if i % 2 else "busy")
    for day in (25, 26, 27, 28):
        world.add_call(account, tokyo(11, day, 18), "canceled")


def test_misses_concentrated_on_tuesday_noon_publish_one_japanese_alert() -> None:
    # Given a Tokyo account whose misses cluster on Tuesday 12:00-13:00
    world = FakeWorld()
    world.add_account("acme", timezone="Asia/Tokyo", language="ja-JP")
    healthy_history(world, "acme")
    tuesday_noon_misses(world, "acme")
    # When the weekly job runs on Monday 09:00 JST
    result = world.run()
    # Then exactly one message names the misses, the answer rate and the worst slot
    assert result["accounts"]["acme"]["decided"] == "published"
    assert len(world.published) == 1
    subject, body, attrs = world.published[0]
    assert subject == "[Acme] 先週の不在着信: 12件 (応答率 70%) — 火曜 12時台に集中"
    assert "火曜 12時台 (8件)" in body
    assert "期間: 2026-11-23 〜 2026-11-29 (Asia/Tokyo)" in body
    assert attrs == {
        "account": "acme",
        "kind": "weekly-unanswered-alert",
        "period": "2026-W48",
        "calls": 40,
        "missed": 12,
        "answer_rate": 0.7,
        "worst_slot": "Tue 12",
    }


def test_english_account_gets_english_text() -> None:
    world = FakeWorld()
    world.add_account("bob", timezone="Asia/Tokyo", language="en-US")
    tuesday_noon_misses(world, "bob")
    world.run()
    subject, body, _ = world.published[0]
    assert subject == "[Bob] Last week's missed calls: 12 (answer rate 70%) - mostly Tue 12:00-13:00"
    assert "Missed calls by time slot: Tue 12:00-13:00 (8)" in body


def test_healthy_account_gets_no_message_but_the_decision_is_recorded() -> None:
    world = FakeWorld()
    world.add_account("calm")
    healthy_history(world, "calm", last_week=True)  # includes last week: 1 missed of 20 -> 95%
    result = world.run()
    assert world.published == []
    assert result["accounts"]["calm"]["decided"] == "nothing-to-say"
    assert world.runs.rows["weekly-unanswered-alert#calm#2026-W48"]["decided"] == "nothing-to-say"


def test_missed_above_baseline_fires_even_with_a_good_answer_rate() -> None:
    # Given 100 calls last week with 6 missed (94% answered) against a baseline of 1 per week
    world = FakeWorld()
    world.add_account("busy")
    healthy_history(world, "busy")
    for i in range(100):
        status = "missed" if i < 6 else "answered"
        world.add_call("busy", tokyo(11, 23, 0) + timedelta(minutes=90 * i), status)
    result = world.run()
    assert result["accounts"]["busy"]["reasons"] == ["missed_vs_baseline"]
    assert len(world.published) == 1


def test_few_misses_above_baseline_stay_quiet_below_min_missed() -> None:
    world = FakeWorld()
    world.add_account("small")
    for i in range(100):
        status = "missed" if i < 4 else "answered"
        world.add_call("small", tokyo(11, 23, 0) + timedelta(minutes=90 * i), status)
    result = world.run()
    assert result["accounts"]["small"]["decided"] == "nothing-to-say"


def test_thresholds_come_from_the_account_config() -> None:
    world = FakeWorld()
    world.add_account("strict", alerts={"answer_rate_below": 0.99})
    healthy_history(world, "strict", last_week=True)
    result = world.run()
    assert result["accounts"]["strict"]["reasons"] == ["answer_rate_below"]


def test_same_week_twice_publishes_once_unless_forced() -> None:
    world = FakeWorld()
    world.add_account("acme")
    tuesday_noon_misses(world, "acme")
    world.run()
    second = world.run(RUN + timedelta(hours=1))
    assert second["accounts"]["acme"]["decided"] == "already-done"
    assert len(world.published) == 1
    forced = world.run(force=True)
    assert forced["accounts"]["acme"]["decided"] == "published"
    assert len(world.published) == 2


def test_not_due_outside_monday_morning_local_time() -> None:
    world = FakeWorld()
    world.add_account("acme")
    world.add_account("ny", timezone="America/New_York")
    tuesday_noon_misses(world, "acme")
    sunday = world.run(tokyo(11, 29, 9))
    early = world.run(tokyo(11, 30, 8))
    assert sunday["accounts"]["acme"]["decided"] == "not-due"
    assert early["accounts"]["acme"]["decided"] == "not-due"
    # Monday 09:00 in Tokyo is Sunday evening in New York
    assert world.run()["accounts"]["ny"]["decided"] == "not-due"
    assert world.published and len(world.published) == 1


def test_week_boundaries_follow_the_account_time_zone() -> None:
    # A call at Sunday 23:30 JST belongs to last week; one at Monday 00:10 JST to this week.
    world = FakeWorld()
    world.add_account("edge", alerts={"answer_rate_below": 0.6})
    world.add_call("edge", tokyo(11, 29, 23, 30), "missed")
    world.add_call("edge", tokyo(11, 30, 0, 10), "answered")
    world.add_call("edge", tokyo(11, 22, 23, 59), "answered")  # previous week
    result = world.run()
    assert result["accounts"]["edge"]["calls"] == 1
    assert result["accounts"]["edge"]["answer_rate"] == 0.0


def test_one_broken_account_does_not_stop_the_others() -> None:
    world = FakeWorld()
    world.add_raw_account("broken", account_config("broken", timezone="Mars/Olympus"))
    world.add_raw_account("garbled", account_config("garbled", alerts="not an object"))
    world.add_account("acme")
    tuesday_noon_misses(world, "acme")
    result = world.run()
    assert result["failures"] == 2
    assert result["accounts"]["broken"]["decided"] == "failed"
    assert "Mars/Olympus" in result["accounts"]["broken"]["error"]
    assert result["accounts"]["acme"]["decided"] == "published"


def test_a_failure_while_acting_is_recorded_and_retried_next_run() -> None:
    world = FakeWorld()
    world.add_account("acme")
    tuesday_noon_misses(world, "acme")
    calls_ok = world.publish

    def broken_publish(*_: Any) -> str:
        raise ConnectionError("sns down")

    world.publish = broken_publish  # type: ignore[method-assign,assignment]
    first = world.run()
    assert first["accounts"]["acme"]["decided"] == "failed"
    assert world.runs.rows["weekly-unanswered-alert#acme#2026-W48"]["decided"] == "failed"
    world.publish = calls_ok  # type: ignore[method-assign]
    assert world.run()["accounts"]["acme"]["decided"] == "published"


def test_subject_is_sns_safe() -> None:
    world = FakeWorld()
    world.add_account("long-name", name="x" * 120 + "\n", language="en")
    tuesday_noon_misses(world, "long-name")
    world.run()
    subject = world.published[0][0]
    assert len(subject) < 100 and "\n" not in subject


def test_callbacks_still_open_from_last_week_are_named_in_a_message_of_their_own() -> None:
    # Given a healthy week, but one missed call on Friday nobody called back
    world = FakeWorld()
    world.add_account("dental", language="ja-JP")
    healthy_history(world, "dental", last_week=True)
    friday = tokyo(11, 27, 17)
    world.add_call("dental", friday, "missed", callback_open=True, ended_at=friday + timedelta(seconds=30))
    # When the Monday alert runs
    result = world.run()["accounts"]["dental"]
    # Then the week itself is healthy, and the overdue callback gets its own message
    assert result["decided"] == "nothing-to-say" and result["callbacks_overdue"] == 1
    (subject, body, attrs), = world.published
    assert attrs["kind"] == "callbacks-overdue" and "2026-11-27 17:00" in body


def test_a_retried_alert_does_not_repeat_the_callbacks_message_when_its_own_failed() -> None:
    # Given a week with missed calls at Tuesday noon and a Friday callback nobody made
    world = FakeWorld()
    world.add_account("acme")
    healthy_history(world, "acme")
    tuesday_noon_misses(world, "acme")
    friday = tokyo(11, 27, 17)
    world.add_call("acme", friday, "missed", callback_open=True, ended_at=friday + timedelta(seconds=30))
    publish = world.publish

    def weekly_fails(subject: str, message: str, attributes: dict[str, Any]) -> str:
        if attributes["kind"] == weekly_alert.JOB:
            raise RuntimeError("SNS throttled")
        return publish(subject, message, attributes)

    # When the alert's own message fails after the callbacks message went out, and it is retried
    world.publish = weekly_fails  # type: ignore[method-assign]
    assert world.run()["failures"] == 1
    world.publish = publish  # type: ignore[method-assign]
    assert world.run()["accounts"]["acme"]["decided"] == "published"

    # Then each message went out once
    assert sorted(p[2]["kind"] for p in world.published) == ["callbacks-overdue", weekly_alert.JOB]


def test_the_baseline_weeks_count_calls_a_short_retention_has_expired() -> None:
    # Given an account that keeps calls 14 days (retention.calls_days): the baseline weeks' calls
    # have left the calls table, their counts are still in the rollups (4 weeks of 6 missed in 100)
    world = FakeWorld()
    world.add_account("brief")
    for w in range(1, 5):
        for i in range(100):
            when = tokyo(11, 23, 0) - timedelta(weeks=w) + timedelta(minutes=90 * i)
            world.add_call("brief", when, "missed" if i < 6 else "answered")
    world.expired_before["brief"] = tokyo(11, 16, 0)
    # and last week the same: 6 missed in 100
    for i in range(100):
        status = "missed" if i < 6 else "answered"
        world.add_call("brief", tokyo(11, 23, 0) + timedelta(minutes=90 * i), status)
    # When the weekly job runs
    result = world.run()
    # Then a week like the four before it is not "missed above baseline" (the baseline read 0)
    assert result["accounts"]["brief"]["reasons"] == []
    assert result["accounts"]["brief"]["baseline_missed_per_week"] == 6
    assert world.published == []
