"""Conversion delivery over its ports: what a retried call event does to rows left pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conversions.delivery import Ports, RetryLater, deliver
from conversions.destinations import RETRY, SENT, Outcome
from conversions.rules import EVENT_TOO_OLD
from tests.support.conversions import InMemoryConversionStore, call, config


class Destination:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.sent = 0

    def send(self, rows: list[Any], credentials: str, target: Any, timezone: str) -> list[Outcome]:
        self.sent += len(rows)
        return [self.outcome for _ in rows]


class Accounts:
    def get(self, account: str) -> Any:
        return config(destinations=["ga4"])


def ga4_ports(store: Any, ga4: Destination, *, now: Any, stored: Any = lambda call_sid: True) -> Ports:
    """Delivery ports of an account whose rule goes to GA4 only."""
    return Ports(store=store, accounts=Accounts(), secret=lambda a, n: "x", destinations={"ga4": ga4},
                 now=now, call_exists=stored)


def test_a_pending_row_whose_retry_falls_past_the_platforms_window_ends_skipped() -> None:
    # Given a GA4 conversion sent a minute before GA4's 72-hour window closes, answered 503
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    clock = [started + timedelta(hours=71, minutes=59)]
    store, ga4 = InMemoryConversionStore(), Destination(Outcome(RETRY, "ga4: HTTP 503"))
    ports = ga4_ports(store, ga4, now=lambda: clock[0])
    event = {"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}
    with pytest.raises(RetryLater):
        deliver(event, ports)
    (row,) = store.rows.values()
    assert row["status"] == "pending"
    # When SQS delivers the event again after the window closed
    clock[0] += timedelta(seconds=90)
    ga4.outcome = Outcome(SENT)
    counts = deliver(event, ports)
    # Then the row ends skipped with the reason, not pending for ever, and nothing more is sent
    (row,) = store.rows.values()
    assert (row["status"], row["reason"]) == ("skipped", EVENT_TOO_OLD)
    assert counts == {"skipped": 1} and ga4.sent == 1


def test_a_conversion_whose_credentials_were_refused_is_sent_once_they_are_fixed() -> None:
    from conversions.destinations import refused

    # Given a GA4 conversion whose platform refused the credentials (a revoked secret)
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    store, ga4 = InMemoryConversionStore(), Destination(refused("ga4: 403"))
    ports = ga4_ports(store, ga4, now=lambda: started + timedelta(hours=1))
    event = {"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}
    assert deliver(event, ports) == {"skipped": 1}  # no retry of the message: it waits for the fix
    (row,) = store.rows.values()
    assert row["status"] == "skipped" and row["reason"].startswith("credentials_refused: ")
    # When the secret is fixed and the call's next event arrives
    ga4.outcome = Outcome(SENT)
    counts = deliver(event, ports)
    # Then the conversion is taken again and sent, not left failed for good
    (row,) = store.rows.values()
    assert row["status"] == "sent" and counts == {"sent": 1} and ga4.sent == 2


def test_a_call_past_its_retention_sends_nothing_even_when_its_rows_are_gone() -> None:
    # Given a call whose expire_at has passed (DynamoDB deletes expired items days later, and may
    # delete its conversion rows before the call)
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z",
                      expire_at=int((started + timedelta(days=30)).timestamp()))
    store, ga4 = InMemoryConversionStore(), Destination(Outcome(SENT))
    clock = [started + timedelta(days=30, minutes=1)]
    ports = ga4_ports(store, ga4, now=lambda: clock[0])
    # When a change of the call (a stage set by a manager) brings it through the rules
    counts = deliver({"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}, ports)
    # Then nothing is sent and no row is made
    assert counts == {} and ga4.sent == 0 and store.rows == {}
    # And before its expiry the same call is sent, its row expiring with it
    clock[0] = started + timedelta(hours=1)
    assert deliver({"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}, ports)
    (row,) = store.rows.values()
    assert row["expire_at"] == event_call["expire_at"]


def test_a_call_event_starts_only_with_its_time_budget_left_in_the_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    import calltrack.queue_retry
    import conversions.handler as handler_module
    from tests.support.events import lambda_context

    # Given an invocation that slow ad platforms left with 60 s (a call event may take 75)
    delivered: list[str] = []
    deferred: list[int] = []
    monkeypatch.setattr(handler_module, "deliver",
                        lambda event, ports: delivered.append(event["call_sid"]) or {})
    monkeypatch.setattr(handler_module.runtime, "ports", lambda: None)
    monkeypatch.setattr(handler_module.runtime, "sqs", lambda: None)
    monkeypatch.setattr(calltrack.queue_retry, "defer", lambda _s, _a, _r, delay: deferred.append(delay))
    context = lambda_context("conversions")
    left = [60_000]
    context.get_remaining_time_in_millis = lambda: left[0]
    record = {"messageId": "m1", "receiptHandle": "r1",
              "body": json.dumps({"type": "call.completed", "account": "acme", "call_sid": "CA1"}),
              "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
              "eventSource": "aws:sqs", "awsRegion": "us-east-1",
              "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:calltrack-conversions"}
    # When the batch comes, Then the event is not started (the Lambda timeout would cut it off
    # mid-send, unrecorded) and comes back in 5 s
    with pytest.raises(BatchProcessingError):
        handler_module.handler({"Records": [record]}, context)
    assert delivered == [] and deferred == [5]
    # And with time enough it is sent
    left[0] = 140_000
    handler_module.handler({"Records": [record]}, context)
    assert delivered == ["CA1"]


@pytest.mark.parametrize(("code", "hours"), [("TOO_RECENT_EVENT", 6), ("TOO_RECENT_CONVERSION_ACTION", 6),
                                             ("TOO_RECENT_CONVERSION", 24)])
def test_google_too_recent_waits_for_the_hours_google_names_instead_of_failing(code: str, hours: int) -> None:
    from conversions.destinations import _per_row

    # Given Google's partial failure for the second of two rows: "too recent"
    body = {"partialFailureError": {"details": [{"errors": [{
        "errorCode": {"conversionUploadError": code},
        "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 1}]}}]}]}}
    # When it is read
    first, second = _per_row(body, 2)
    # Then the first row is sent and the second waits at least the hours Google names, not failed
    assert first == Outcome(SENT)
    assert second.status == RETRY and code in (second.reason or "")
    assert hours * 3600 <= second.wait_s <= hours * 3600 + 3600


def test_a_row_google_takes_only_later_puts_the_message_off_that_long() -> None:
    from conversions.handler import retry_delay_s

    # Given a row its platform takes only later (as GoogleAds reads Google's TOO_RECENT_EVENT:
    # the click minutes before the call; delivery treats every platform's wait alike)
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    store = InMemoryConversionStore()
    ga4 = Destination(Outcome(RETRY, "google_ads: TOO_RECENT_EVENT", wait_s=6 * 3600 + 900))
    ports = ga4_ports(store, ga4, now=lambda: datetime(2026, 11, 26, 1, 6, tzinfo=UTC))
    # When the event is delivered
    with pytest.raises(RetryLater) as later:
        deliver({"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}, ports)
    # Then the row stays pending with the reason, and the message comes back after that wait,
    # not after the 30-second backoff of a first failure (never past SQS's 12 hours)
    (row,) = store.rows.values()
    assert (row["status"], row["reason"]) == ("pending", "google_ads: TOO_RECENT_EVENT")
    assert retry_delay_s(1, later.value.wait_s) == 6 * 3600 + 900
    assert retry_delay_s(1, 24 * 3600) == 12 * 3600 - 300
    assert retry_delay_s(8, 0) == 3600 and retry_delay_s(1, 0) == 30


@pytest.fixture()
def conversions_table(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``DynamoConversions`` on an in-process DynamoDB (moto): its conditions as DynamoDB reads them."""
    from calltrack.models.conversions import Conversion
    from conversions.store import DynamoConversions
    from tests.support.dynamo import moto_table

    with moto_table(monkeypatch, Conversion, {"call_sid": "HASH", "key": "RANGE"}):
        yield DynamoConversions()


class Google:
    """Google Ads as the adapter sees it: answers ``outcomes`` in turn (then sent); ``during_send``
    runs while a send is on its way (another worker's event arriving meanwhile)."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[tuple[str, float | None]] = []
        self.during_send: Any = None

    def send(self, rows: list[Any], credentials: str, target: Any, timezone: str) -> list[Outcome]:
        self.sent += [("upload", r.value) for r in rows]
        if self.during_send is not None:
            during, self.during_send = self.during_send, None
            during()
        return [self.outcomes.pop(0) if self.outcomes else Outcome(SENT) for _ in rows]

    def restate(self, rows: list[Any], *args: Any) -> list[Outcome]:
        self.sent += [("restate", value) for _, value in rows]
        return [Outcome(SENT) for _ in rows]


def _won_value_ports(store: Any, google: Google, clock: list[datetime]) -> Ports:
    cfg = config(value={"from": "won_value", "default": 5000}, destinations=["google_ads"])

    class OneAccount:
        def get(self, account: str) -> Any:
            return cfg

    return Ports(store=store, accounts=OneAccount(), secret=lambda a, n: "x",
                 destinations={"google_ads": google}, now=lambda: clock[0], call_exists=lambda sid: True)


def _event(version: int, **changes: Any) -> dict[str, Any]:
    event_call = call(version=version, **changes)
    return {"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}


def test_a_newer_value_arriving_while_an_older_one_is_sent_is_tried_again_not_dropped(
    conversions_table: Any,
) -> None:
    clock = [datetime(2026, 11, 29, 2, 0, tzinfo=UTC)]
    google = Google()
    ports = _won_value_ports(conversions_table, google, clock)
    raised: list[RetryLater] = []

    def won_meanwhile() -> None:
        try:
            deliver(_event(2, stage="won", value=80000), ports)
        except RetryLater as later:
            raised.append(later)

    # Given the call's completion (value 5000) on its way to Google, and the deal marked won at
    # 80,000 while that send is under way (another worker, the row claimed)
    google.during_send = won_meanwhile
    deliver(_event(1), ports)
    # Then the won event was not dropped: its message comes back, and then restates the conversion
    assert len(raised) == 1
    clock[0] += timedelta(seconds=30)
    assert deliver(_event(2, stage="won", value=80000), ports) == {"restated": 1}
    assert google.sent == [("upload", 5000), ("restate", 80000)]


def test_a_late_retry_of_an_older_event_does_not_send_its_value_over_a_newer_one(
    conversions_table: Any,
) -> None:
    clock = [datetime(2026, 11, 29, 2, 0, tzinfo=UTC)]
    google = Google(Outcome(RETRY, "google_ads: HTTP 503"), Outcome(RETRY, "google_ads: HTTP 503"))
    ports = _won_value_ports(conversions_table, google, clock)
    older, newer = _event(1), _event(2, stage="won", value=80000)
    # Given the completion (5000) and the won deal (80,000) both answered 503
    for event in (older, newer):
        with pytest.raises(RetryLater):
            deliver(event, ports)
        clock[0] += timedelta(seconds=1)
    # When the older event's retry comes back first, then the newer one's
    clock[0] += timedelta(minutes=5)
    deliver(older, ports)
    deliver(newer, ports)
    # Then Google was sent the newer value, and never the older one after it
    assert google.sent[2:] == [("upload", 80000)]
    (row,) = conversions_table.of_call(older["call_sid"])
    assert (row["status"], row["value"], row["call_version"]) == ("sent", 80000, 2)


def test_a_retry_after_the_caller_was_erased_brings_nothing_back_and_sends_nothing() -> None:
    # Given a GA4 conversion answered 503, whose row the caller's erasure then deleted with the call
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    store, ga4 = InMemoryConversionStore(), Destination(Outcome(RETRY, "ga4: HTTP 503"))
    stored = {event_call["call_sid"]}
    ports = ga4_ports(store, ga4, now=lambda: datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
                      stored=lambda sid: sid in stored)
    event = {"account": "acme", "call_sid": event_call["call_sid"], "call": event_call}
    with pytest.raises(RetryLater):
        deliver(event, ports)
    store.rows.clear()
    stored.clear()
    # When the event's message comes back from its backoff
    ga4.outcome = Outcome(SENT)
    counts = deliver(event, ports)
    # Then no row is made again and nothing is sent
    assert counts == {} and store.rows == {} and ga4.sent == 1


def test_a_platform_taking_one_event_per_request_has_each_row_recorded_before_the_next_is_sent() -> None:
    from conversions.destinations import OneByOne

    # Given a GA4-like platform (one event per request) and a call earning two GA4 rows
    cfg = config(destinations=["ga4"])
    cfg = cfg.model_copy(update={"conversions": [cfg.conversions[0],
                                                 cfg.conversions[0].model_copy(update={"name": "second"})]})
    store = InMemoryConversionStore()

    class CutOff(OneByOne):
        def _one(self, row: Any, credentials: str, target: Any) -> Outcome:
            if row.rule == "second":
                raise TimeoutError("the Lambda ran out of time here")
            return Outcome(SENT)

    class TwoRules:
        def get(self, account: str) -> Any:
            return cfg

    ports = Ports(store=store, accounts=TwoRules(), secret=lambda a, n: "x",
                  destinations={"ga4": CutOff("")}, now=lambda: datetime(2026, 11, 29, 2, 0, tzinfo=UTC),
                  call_exists=lambda sid: True)
    # When the invocation is cut off while the second row is on its way
    with pytest.raises(TimeoutError):
        deliver({"account": "acme", "call_sid": call()["call_sid"], "call": call()}, ports)
    # Then the first row is already recorded sent (its retry will not send it again)
    assert sorted(r["status"] for r in store.rows.values()) == ["pending", "sent"]


def test_an_older_event_planning_a_skip_ends_a_row_a_newer_event_left_pending(conversions_table: Any) -> None:
    # Given GA4 answered 503 to the call's newer event (version 2), its row left pending
    event_call = call(started_at="2026-11-26T01:00:00Z", ended_at="2026-11-26T01:05:00Z")
    clock = [datetime(2026, 11, 26, 2, 0, tzinfo=UTC)]
    ga4 = Destination(Outcome(RETRY, "ga4: HTTP 503"))
    ports = ga4_ports(conversions_table, ga4, now=lambda: clock[0])
    newer = {"account": "acme", "call_sid": event_call["call_sid"], "call": {**event_call, "version": 2}}
    older = {"account": "acme", "call_sid": event_call["call_sid"], "call": {**event_call, "version": 1}}
    with pytest.raises(RetryLater):
        deliver(newer, ports)
    # When the older event comes back after GA4's 72-hour window closed (the newer one's message
    # may be in the dead-letter queue by then)
    clock[0] += timedelta(hours=73)
    deliver(older, ports)
    # Then the row ends skipped with the reason (a skip does not depend on the version), not
    # pending for ever
    (row,) = conversions_table.of_call(event_call["call_sid"])
    assert (row["status"], row["reason"]) == ("skipped", EVENT_TOO_OLD)


def test_a_row_waiting_for_google_is_not_uploaded_again_by_the_calls_later_changes(
    conversions_table: Any,
) -> None:
    clock = [datetime(2026, 11, 29, 2, 0, tzinfo=UTC)]
    wait = 6 * 3600 + 900
    google = Google(Outcome(RETRY, "google_ads: TOO_RECENT_EVENT", wait_s=wait))
    ports = _won_value_ports(conversions_table, google, clock)
    # Given the completion's upload answered "too recent" (the click minutes before the call)
    with pytest.raises(RetryLater):
        deliver(_event(1), ports)
    # (its message back after the queue's 6 minutes, its delay not set, waits again: not dropped)
    clock[0] += timedelta(minutes=6)
    with pytest.raises(RetryLater):
        deliver(_event(1), ports)
    # When the call changes a minute later (its recording stored; then won at 80,000)
    clock[0] += timedelta(minutes=1)
    waits = []
    for event in (_event(2), _event(3, stage="won", value=80000)):
        with pytest.raises(RetryLater) as later:
            deliver(event, ports)
        waits.append(later.value.wait_s)
    # Then nothing is uploaded again: each waits for the row, not for a 30-s backoff
    assert google.sent == [("upload", 5000)]
    assert all(wait - 600 <= w <= wait for w in waits)
    # When the wait is over, the newest value goes, and the held event's own message (whose delay
    # could not be set) finds it done
    clock[0] += timedelta(seconds=wait)
    assert deliver(_event(3, stage="won", value=80000), ports) == {"sent": 1}
    assert deliver(_event(1), ports) == {}
    assert google.sent == [("upload", 5000), ("upload", 80000)]
