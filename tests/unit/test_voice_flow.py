"""The voice webhook's decisions, with fake storage: TwiML, fail-open, odd callers, callbacks."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.etree import ElementTree as ET

import pytest

from calltrack.twilio_edge import TwilioRequest
from tests.support.twilio import dial_of
from voice_webhook import flow
from voice_webhook import store as voice_store

NUMBER = "+815011112222"
FORWARD = "+81312345678"
CALLER = "+819012345678"
SID = "CA" + "1" * 32
ROUTING = {
    "forward_to": FORWARD,
    "language": "ja-JP",
    "timezone": "Asia/Tokyo",
    "ring_timeout": 25,
    "recording": {"enabled": True, "announcement": "この通話は録音されます"},
    "whisper": "{channel}からのお電話です",
    "voicemail": False,
}
ROW = {
    "number": NUMBER,
    "account": "acme",
    "kind": "static",
    "channel": "google-ads",
    "campaign": "brand",
    "routing": json.dumps(ROUTING, ensure_ascii=False),
}


class FakeStorage:
    def __init__(self, rows=None, *, fail_read=False, fail_write=False):
        self.rows = rows if rows is not None else {NUMBER: ROW}
        self.fail_read, self.fail_write = fail_read, fail_write
        self.calls: dict[str, dict[str, Any]] = {}
        self.callers: dict[str, dict[str, Any]] = {}  # caller -> callers row
        self.first_time_seen: list[bool | None] = []  # what the flow passed to write_origin
        self.requests = 0
        self.written: list[str] = []  # the updated_at of every write
        self.erasures: dict[str, dict[str, float]] = {}  # caller -> account -> erased at (replay)
        self.leases: dict[str, dict[str, Any]] = {}  # number -> lease row
        self.remembered: list[tuple] = []  # remember_pool_call's arguments

    def read_routing(self, number, caller):
        self.requests += 1
        if self.fail_read:
            raise TimeoutError("read timed out")
        callers = self.callers.get(caller) if caller else voice_store.UNKNOWN
        return self.rows.get(number), self.leases.get(number), callers

    def lease_at(self, number, at):
        self.requests += 1
        return self.leases.get(number)  # the lease history as the live row (these tests' leases)

    def remember_pool_call(self, caller, account, number, session_id, earlier, *, called_at, mark=True):
        self.requests += 1
        self.remembered.append((caller, account, number, session_id, called_at, mark))
        self.callers.setdefault(caller, {"caller": caller})[f"last#{account}"] = earlier
        lease = self.leases.get(number)
        if mark and lease and lease.get("session_id") == session_id:
            lease.update(called_session=session_id, called_at=called_at)
            return True
        return False

    def erasure_marks(self, caller):
        self.requests += 1
        if self.fail_read:
            raise TimeoutError("read timed out")
        return dict(self.erasures.get(caller, {}))

    def write_origin(self, call_sid, fields, *, caller, first_time, now_iso, bump=None):
        self.requests += 1
        self.written.append(now_iso)
        self.first_time_seen.append(first_time)
        if self.fail_write:
            raise ConnectionError("down")
        row = self.calls.setdefault(call_sid, {"call_sid": call_sid})
        if row.get("account"):
            return "duplicate"
        if caller:
            attribute = voice_store.first_call_attribute(fields["account"])
            callers_row = self.callers.setdefault(caller, {"caller": caller})
            fields = {**fields, "first_time": attribute not in callers_row}
            callers_row.setdefault(attribute, {"call_sid": call_sid})
        row.update({k: v for k, v in fields.items() if k not in row or k not in ("status", "started_at")})
        row.setdefault("status", "ringing")
        row.setdefault("status_rank", 0)
        return "created"

    def apply_outcome(self, call_sid, fields, status_fields, *, rank, marker, now_iso, orphan_expire_at=None):
        self.requests += 1
        self.written.append(now_iso)
        row = self.calls.setdefault(call_sid, {"call_sid": call_sid})
        if orphan_expire_at is not None and "account" not in row and "expire_at" not in row:
            row["expire_at"] = orphan_expire_at  # as CallItems: only a row without its origin
        if marker in row:
            return "duplicate", None
        if row.get("status_rank", -1) < rank:
            row.update({**fields, **status_fields, "status_rank": rank})
            return "applied", dict(row)
        row.update(fields)
        return "fields-only", dict(row)


def deps(storage, *, fallback="", cache=None):
    return flow.Deps(
        public_url="https://calls.example.jp",
        storage=storage,
        metrics=flow.MetricSink(),
        log=logging.getLogger("test"),
        cache=cache or flow.RoutingCache(),
        now=lambda: 1_800_000_000.0,
        fallback_forward_to=fallback,
    )


def req(path, params, query=""):
    return TwilioRequest("POST", path, query, {}, params, {k: [v] for k, v in params.items()})


def voice_params(**over):
    params = {"CallSid": SID, "To": NUMBER, "From": CALLER, "Called": NUMBER, "Caller": CALLER}
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}


def test_static_number_call_is_forwarded_recorded_and_whispered():
    store = FakeStorage()
    d = deps(store)
    status, twiml = flow.voice(req("/twilio/voice", voice_params()), d)
    assert status == 200
    root = ET.fromstring(twiml)
    assert root.find("Say").text == "この通話は録音されます"
    dial = dial_of(twiml)
    assert dial.get("callerId") == CALLER
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("timeout") == "25"
    assert dial.get("action").startswith("https://calls.example.jp/twilio/dial-status?t=")
    number = dial.find("Number")
    assert number.text == FORWARD
    whisper = parse_qs(urlparse(number.get("url")).query)
    assert whisper["say"] == ["Google広告からのお電話です"]
    call = store.calls[SID]
    assert (call["account"], call["channel"], call["confidence"], call["status"]) == (
        "acme",
        "google-ads",
        1.0,
        "ringing",
    )
    assert call["first_time"] is True
    assert d.metrics.counts == {"CallsReceived": 1}
    assert store.requests == 2  # one read, one write


@pytest.mark.parametrize("hidden", ["anonymous", "+266696687", "Restricted", "", "not-a-number"])
def test_hidden_or_invalid_caller_is_forwarded_showing_the_tracking_number(hidden):
    store = FakeStorage()
    params = voice_params(From=hidden, Caller=hidden, CallerName="ヤマダ タロウ")
    status, twiml = flow.voice(req("/twilio/voice", params), deps(store))
    assert status == 200
    assert dial_of(twiml).get("callerId") == NUMBER
    call = store.calls[SID]
    assert call["caller"] is None and call["caller_kind"] in ("anonymous", "invalid", "missing")
    assert call["caller_name"] == "ヤマダ タロウ"


def test_unknown_number_gets_a_polite_message_and_hangup():
    store = FakeStorage(rows={})
    status, twiml = flow.voice(req("/twilio/voice", voice_params()), deps(store))
    root = ET.fromstring(twiml)
    assert status == 200 and root.find("Say") is not None and root.find("Hangup") is not None
    assert root.find("Dial") is None and store.calls == {}


def test_storage_down_with_warm_cache_still_dials_the_business():
    cache = flow.RoutingCache()
    flow.voice(req("/twilio/voice", voice_params()), deps(FakeStorage(), cache=cache))
    broken = FakeStorage(fail_read=True, fail_write=True)
    d = deps(broken, cache=cache)
    status, twiml = flow.voice(req("/twilio/voice", voice_params(CallSid="CA" + "2" * 32)), d)
    assert status == 200 and dial_of(twiml).find("Number").text == FORWARD
    assert d.metrics.counts["WebhookFailures"] >= 1


def test_storage_down_on_a_cold_process_uses_the_last_resort_forward_number():
    d = deps(FakeStorage(fail_read=True), fallback="+81300000000")
    status, twiml = flow.voice(req("/twilio/voice", voice_params()), d)
    dial = dial_of(twiml)
    assert dial.find("Number").text == "+81300000000" and dial.get("callerId") == CALLER


def test_a_call_the_last_resort_put_through_is_stored_answered_from_its_dial_result():
    # Given a cold process with storage down: the last-resort number rings
    d = deps(FakeStorage(fail_read=True), fallback="+81300000000")
    _, twiml = flow.voice(req("/twilio/voice", voice_params()), d)
    action = urlparse(dial_of(twiml).get("action"))
    # Then its <Dial> result comes back to the webhook (without it the call stayed "missed")
    assert (action.path, parse_qs(action.query)["t"]) == ("/twilio/dial-status", ["1800000000"])
    # And when Twilio posts it, with storage back, the call is answered for its talk time
    store = FakeStorage()
    dial = voice_params(DialCallStatus="completed", DialCallDuration="300", CallStatus="completed")
    flow.dial_status(req("/twilio/dial-status", dial, action.query), deps(store))
    assert (store.calls[SID]["status"], store.calls[SID]["talk_seconds"]) == ("answered", 300)


def test_after_a_slow_read_the_call_is_put_through_and_its_write_left_to_the_outbox():
    # Given a routing read that took 3 s (DynamoDB slow, not down)
    store = FakeStorage()
    clock = iter([1_800_000_000.0, 1_800_000_003.0])
    d = deps(store)
    d.now = lambda: next(clock, 1_800_000_003.0)
    handed: list[str] = []
    d.outbox = lambda r, t: handed.append(r.path)
    # When the call comes in
    _, twiml = flow.voice(req("/twilio/voice", voice_params()), d)
    # Then the business rings at once, and the write goes to the outbox instead of taking the caller
    # past the function's timeout (the replay writes it)
    assert dial_of(twiml).find("Number").text == FORWARD
    assert store.requests == 1 and SID not in store.calls and handed == ["/twilio/voice"]


def test_a_call_offered_the_voicemail_after_nobody_answered_says_so():
    # Given a flow that takes a voicemail when nobody answers (vm=1 on the <Dial> action)
    store = FakeStorage()
    dial = voice_params(DialCallStatus="no-answer", CallStatus="in-progress")
    _, twiml = flow.dial_status(req("/twilio/dial-status", dial, "t=1799999980&vm=1&lang=ja-JP"), deps(store))
    # Then the caller hears the prompt, and the call is marked as offered a voicemail, so the
    # recording-reconcile job looks for the message if its callback is lost
    assert ET.fromstring(twiml).find("Record") is not None
    assert (store.calls[SID]["status"], store.calls[SID]["voicemail"]) == ("missed", True)


def test_storage_down_cold_without_fallback_says_sorry_not_an_error():
    status, twiml = flow.voice(req("/twilio/voice", voice_params()), deps(FakeStorage(fail_read=True)))
    assert status == 200 and ET.fromstring(twiml).find("Say") is not None


def test_write_failure_still_forwards():
    d = deps(FakeStorage(fail_write=True))
    status, twiml = flow.voice(req("/twilio/voice", voice_params()), d)
    assert dial_of(twiml).find("Number").text == FORWARD
    assert d.metrics.counts["WebhookFailures"] == 1


def test_signed_request_without_to_is_forwarded_by_called_or_last_resort():
    store = FakeStorage()
    _, twiml = flow.voice(req("/twilio/voice", voice_params(To=None)), deps(store))
    assert dial_of(twiml).find("Number").text == FORWARD
    _, twiml = flow.voice(
        req("/twilio/voice", voice_params(To=None, Called=None)), deps(store, fallback=FORWARD)
    )
    assert dial_of(twiml).find("Number").text == FORWARD


@pytest.mark.parametrize(
    "order",
    [
        ("voice", "dial", "status"),
        ("status", "dial", "voice"),
        ("dial", "status", "voice"),
        ("dial", "dial", "voice", "status", "status"),
    ],
)
def test_callbacks_in_any_order_or_repeated_end_answered(order):
    store = FakeStorage()
    d = deps(store)
    steps = {
        "voice": lambda: flow.voice(req("/twilio/voice", voice_params()), d),
        "dial": lambda: flow.dial_status(
            req(
                "/twilio/dial-status",
                voice_params(DialCallStatus="completed", DialCallDuration="42"),
                "t=1799999900",
            ),
            d,
        ),
        "status": lambda: flow.call_status(
            req("/twilio/call-status", voice_params(CallStatus="completed", CallDuration="80")), d
        ),
    }
    for step in order:
        steps[step]()
    call = store.calls[SID]
    assert (call["status"], call["talk_seconds"], call["account"], call["channel"]) == (
        "answered",
        42,
        "acme",
        "google-ads",
    )
    assert call["ring_seconds"] == 100 - 42


@pytest.mark.parametrize("dial", ["busy", "no-answer", "failed", "canceled"])
def test_unanswered_dial_outcomes_are_missed_with_the_precise_reason(dial):
    store = FakeStorage()
    d = deps(store)
    flow.voice(req("/twilio/voice", voice_params()), d)
    _, twiml = flow.dial_status(req("/twilio/dial-status", voice_params(DialCallStatus=dial)), d)
    # Then a caller still on the line hears why before the line closes (it was silence, 2026-12-03)
    root = ET.fromstring(twiml)
    assert "おかけ直しください" in root.find("Say").text
    assert root.find("Say").get("language") == "ja-JP" and root.find("Hangup") is not None
    call = store.calls[SID]
    assert (call["status"], call["outcome_reason"], call["talk_seconds"]) == ("missed", dial, 0)
    assert d.metrics.counts["CallsMissed"] == 1


def test_missed_call_gets_voicemail_when_configured():
    _, twiml = flow.dial_status(
        req("/twilio/dial-status", voice_params(DialCallStatus="no-answer"), "t=1&vm=1&lang=ja-JP"),
        deps(FakeStorage()),
    )
    root = ET.fromstring(twiml)
    assert root.find("Record") is not None
    assert root.find("Record").get("recordingStatusCallback") == "https://calls.example.jp/twilio/recording"


def test_whisper_says_the_signed_text():
    _, twiml = flow.whisper(req("/twilio/whisper", {}, "say=Google%E5%BA%83%E5%91%8A&lang=ja-JP"), deps(None))
    say = ET.fromstring(twiml).find("Say")
    assert say.text == "Google広告" and say.get("language") == "ja-JP"


def test_repeat_caller_is_not_first_time():
    store = FakeStorage()
    d = deps(store)
    flow.voice(req("/twilio/voice", voice_params()), d)
    flow.voice(req("/twilio/voice", voice_params(CallSid="CA" + "3" * 32)), d)
    assert store.calls[SID]["first_time"] is True
    assert store.calls["CA" + "3" * 32]["first_time"] is False
    assert store.first_time_seen == [True, False]  # decided by the read, before the write


def test_a_caller_known_to_another_account_is_first_time_here():
    # Given a caller who has called another account's tracking number
    other = {**ROW, "number": "+815099990000", "account": "other-shop"}
    fake = FakeStorage({NUMBER: ROW, other["number"]: other})
    d = deps(fake)
    flow.voice(req("/twilio/voice", voice_params(To=other["number"], Called=other["number"])), d)
    # When they call this account's number
    second = "CA" + "4" * 32
    flow.voice(req("/twilio/voice", voice_params(CallSid=second)), d)
    # Then the call is this account's first from them, as the flow read it
    assert fake.first_time_seen == [True, True]
    assert fake.calls[second]["first_time"] is True
    assert set(fake.callers[CALLER]) == {"caller", "first#other-shop", "first#" + ROW["account"]}


@pytest.mark.parametrize(("dial", "answered", "missed"), [("completed", 1, 0), ("no-answer", 0, 1)])
def test_a_call_is_counted_once_when_the_status_callback_comes_before_the_dial_action(dial, answered, missed):
    # Given a call whose status callback (the call ended) is applied before its <Dial> action
    store = FakeStorage()
    d = deps(store)
    flow.voice(req("/twilio/voice", voice_params()), d)
    flow.call_status(req("/twilio/call-status", voice_params(CallStatus="completed", CallDuration="30")), d)

    # When the <Dial> action arrives with the dial's real outcome
    params = voice_params(DialCallStatus=dial, DialCallDuration="20")
    flow.dial_status(req("/twilio/dial-status", params, "t=1799999960"), d)

    # Then the call is counted once, as what the dial says it was
    assert store.calls[SID]["status"] == ("answered" if answered else "missed")
    assert d.metrics.counts.get("CallsAnswered", 0) == answered
    assert d.metrics.counts.get("CallsMissed", 0) == missed


def test_a_status_callback_for_a_number_that_is_not_ours_leaves_a_row_that_expires():
    # Given a status callback for a call to a number no account has (no origin will ever come)
    store = FakeStorage()
    d = deps(store)
    params = voice_params(To="+81300000000", Called="+81300000000", CallStatus="completed")

    # When it is applied
    flow.call_status(req("/twilio/call-status", params), d)

    # Then the row it created has no account, and expires after the orphan days
    row = store.calls[SID]
    assert "account" not in row
    assert row["expire_at"] == 1_800_000_000 + flow.ORPHAN_CALL_DAYS * 86400


def test_an_answered_ring_group_member_handed_to_the_outbox_is_replayed():
    import json as _json

    from voice_webhook import outbox, replay

    # Given a ring-next callback (a member answered) whose write failed and went to the outbox
    params = voice_params(DialCallStatus="completed", DialCallDuration="30")
    req_ = req("/twilio/ring-next", params, "t=1799999960&f=main&g=desk&o=0.1&i=0")
    body = _json.loads(outbox.message(req_, 1_800_000_000.0))
    store = FakeStorage()
    # When the outbox replays it
    route = replay.replay(body, store, "https://calls.example.jp")
    # Then the call is recorded answered, as the dial result it was
    assert route == "/twilio/ring-next"
    assert (store.calls[SID]["status"], store.calls[SID]["talk_seconds"]) == ("answered", 30)


def test_an_outbox_message_holds_only_text_sqs_takes_and_decodes_to_the_callback():
    import json as _json
    import re as _re

    from voice_webhook import outbox

    # Given a callback whose caller name holds U+FFFF (SQS refuses it raw: the callback would be
    # lost with storage down) and Japanese
    params = voice_params(CallerName="山田\uffff")
    body = outbox.message(req("/twilio/voice", params, ""), 1_800_000_000.0)
    # Then the message is text SQS takes, and reads back as the callback
    assert _re.fullmatch("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*", body)
    assert "山田" in body and _json.loads(body)["params"]["CallerName"] == "山田\uffff"


def test_a_replayed_callback_marks_its_write_with_when_it_was_written_not_when_it_came():
    import json as _json
    import time as _time

    from voice_webhook import outbox, replay

    # Given a dial result that came in 2023 and went to the outbox while storage was down
    params = voice_params(DialCallStatus="completed", DialCallDuration="30")
    body = _json.loads(outbox.message(req("/twilio/dial-status", params, "t=1699999960"), 1_700_000_000.0))
    store = FakeStorage()
    # When the outbox replays it, later
    before = _time.time()
    replay.replay(body, store, "https://calls.example.jp")
    # Then the call's answer is the callback's, and its updated_at is the replay's (the daily export
    # refreshes a day whose calls were written after its file)
    assert store.calls[SID]["status"] == "answered"
    assert store.written and all(flow.iso(before) <= w for w in store.written), store.written
    # while a live callback writes at its own time
    live = FakeStorage()
    flow.dial_status(req("/twilio/dial-status", params, "t=1799999960"), deps(live))
    assert live.written and set(live.written) == {flow.iso(1_800_000_000.0)}


@pytest.mark.parametrize("duration", ["inf", "9" * 400, "nan"])
def test_a_dial_duration_that_is_no_number_is_recorded_without_it(duration):
    store = FakeStorage()
    d = deps(store)
    flow.voice(req("/twilio/voice", voice_params()), d)
    params = voice_params(DialCallStatus="completed", DialCallDuration=duration)
    status, _ = flow.dial_status(req("/twilio/dial-status", params, "t=1799999960"), d)
    assert status == 200 and store.calls[SID]["status"] == "answered"


def test_the_voicemail_ends_with_a_hangup_when_its_recording_is_done():
    status, twiml = flow.voicemail_done(req("/twilio/voicemail-done", voice_params()), deps(FakeStorage()))
    assert status == 200 and ET.fromstring(twiml).find("Hangup") is not None


def test_the_whisper_names_the_channel_without_touching_words_that_contain_its_id():
    # Given a whisper the admin side rendered with the channel id "line" and the campaign "online-sale"
    text = flow.whisper_text("line広告 online-sale のお電話です", "line", "online-sale", "ja-JP")
    # Then the channel is spoken by its Japanese name, and the campaign is left as it is
    assert text is not None and "online-sale" in text and "onLINE" not in text
    assert text.startswith(flow.CHANNEL_NAMES_JA["line"])


def test_a_call_answered_while_storage_was_down_is_recorded_as_what_it_did():
    import json as _json

    from calltrack.account_config import normalize_config, parse_config, tracking_rows
    from tests.support.accounts import account_config
    from voice_webhook import outbox, replay

    # Given a number whose flow is closed at this hour (17:00 JST: voicemail after 10:00)
    flow_spec = {
        "hours": {"mon-fri": "09:00-10:00"},
        "targets": {"desk": {"forward": "03-1234-5678"}},
        "after_hours": {"voicemail": True},
    }
    config = account_config("acme", flows={"main": flow_spec}, flow="main",
                            numbers=[{"number": NUMBER, "channel": "flyer"}])
    row = tracking_rows(normalize_config(parse_config(config)))[NUMBER]
    cache = flow.RoutingCache()
    warm = voice_params(CallSid="CA" + "3" * 32)
    flow.voice(req("/twilio/voice", warm), deps(FakeStorage({NUMBER: row}), cache=cache))
    # When a call comes while storage is down: the warm cache rings the flow's first target at once
    handed: list[str] = []
    broken = deps(FakeStorage({NUMBER: row}, fail_read=True, fail_write=True), cache=cache)
    broken.outbox = lambda r, t: handed.append(outbox.message(r, t))
    _, twiml = flow.voice(req("/twilio/voice", voice_params()), broken)
    assert dial_of(twiml) is not None and len(handed) == 1
    # and the outbox replays it once storage is back
    store = FakeStorage({NUMBER: row})
    replay.replay(_json.loads(handed[0]), store, "https://calls.example.jp")
    # Then the record says the first target rang because of the outage, not "after hours, voicemail"
    call = store.calls[SID]
    assert (call["flow_branch"], call["target"]) == ("fail-open", "desk") and not call.get("voicemail")


def test_a_call_answered_by_the_last_resort_is_replayed_without_a_flow_target():
    import json as _json

    from calltrack.account_config import normalize_config, parse_config, tracking_rows
    from tests.support.accounts import account_config
    from voice_webhook import outbox, replay

    flow_spec = {"targets": {"desk": {"forward": "03-1234-5678"}}}
    config = account_config("acme", flows={"main": flow_spec}, flow="main",
                            numbers=[{"number": NUMBER, "channel": "flyer"}])
    row = tracking_rows(normalize_config(parse_config(config)))[NUMBER]
    # Given a cold process with storage down: the last resort number rings, not the flow
    handed: list[str] = []
    cold = deps(FakeStorage({NUMBER: row}, fail_read=True), fallback="+81300000000")
    cold.outbox = lambda r, t: handed.append(outbox.message(r, t))
    _, twiml = flow.voice(req("/twilio/voice", voice_params()), cold)
    assert dial_of(twiml).find("Number").text == "+81300000000"
    # When it is replayed, Then the record says the flow failed open, and names no flow target
    store = FakeStorage({NUMBER: row})
    replay.replay(_json.loads(handed[0]), store, "https://calls.example.jp")
    assert (store.calls[SID]["flow_branch"], store.calls[SID].get("target")) == ("fail-open", None)


def test_a_menu_choice_replayed_while_storage_still_fails_is_kept_for_the_next_try():
    import json as _json

    from voice_webhook import outbox, replay

    # Given a menu choice handed to the outbox (its write failed)
    handed: list[str] = []
    live = deps(FakeStorage(fail_read=True), fallback="+81300000000")
    live.outbox = lambda r, t: handed.append(outbox.message(r, t))
    flow.menu(req("/twilio/menu", voice_params(Digits="2"), "t=1799999990&f=main"), live)
    assert len(handed) == 1
    # When the replay runs while DynamoDB still fails (and no cache, no snapshot)
    # Then it asks SQS for another try (it acknowledged the message and lost the choice)
    with pytest.raises(flow.RetryLater):
        replay.replay(_json.loads(handed[0]), FakeStorage(fail_read=True), "https://calls.example.jp")

    # When it runs with DynamoDB back
    class Noted(FakeStorage):
        def note(self, call_sid, fields, *, now_iso):
            self.calls.setdefault(call_sid, {}).update(fields)

        def bump(self, number, counter):
            raise AssertionError("no turn to advance: the last resort rang, not a ring group")

    store = Noted()
    replay.replay(_json.loads(handed[0]), store, "https://calls.example.jp")
    # Then the call records the key and that the last resort answered it, not a target that never rang
    assert store.calls[SID] == {"menu_choice": "2", "flow_branch": "fail-open"}


def test_a_live_call_never_reads_the_lease_history_even_if_the_number_was_leased_during_its_read():
    # Given a pool number whose lease row changed while the call's read was on its way
    class Leased(FakeStorage):
        asked: list[float] = []

        def read_routing(self, number, caller):
            row, _, callers = super().read_routing(number, caller)
            lease = {"session_id": "s-new", "leased_at": 1_800_000_005, "expires_at": 1_800_000_600}
            return row, lease, callers

        def lease_at(self, number, at):
            self.asked.append(at)
            return None

    store = Leased()
    # When the call comes in live, then it makes its two requests (read, write) and no third
    flow.voice(req("/twilio/voice", voice_params()), deps(store))
    assert store.requests == 2 and store.asked == []


@pytest.mark.parametrize(("kind", "rebuilt"), [("static", True), ("pool", False)])
def test_a_callback_rebuilds_a_missing_call_unless_a_pool_numbers_lease_came_back_unread(kind, rebuilt):
    # Given a call whose incoming request was never recorded, and the read leaving the lease key
    # unprocessed (throttled)
    class LeaseUnread(FakeStorage):
        def read_routing(self, number, caller):
            row, _, callers = super().read_routing(number, caller)
            return row, voice_store.LEASE_UNREAD, callers

    store = LeaseUnread({NUMBER: {**ROW, "kind": kind, "pool": "g" if kind == "pool" else None}})
    # When its status callback comes
    flow.call_status(req("/twilio/call-status", voice_params(CallStatus="completed", CallDuration="30")),
                     deps(store))
    # Then a static number's call is rebuilt (it needs no lease); a pool number's waits for a read
    # that has its lease (another callback, or the replay), rather than be recorded without it
    assert (store.calls[SID].get("account") == "acme") is rebuilt


def test_a_callback_replayed_after_its_callers_erasure_writes_nothing_but_a_newer_one_does():
    import json as _json

    from voice_webhook import outbox, replay

    # Given callbacks of a call that waited in the outbox (an outage) while the caller was erased
    # from the account at 1_800_000_500, and a call of the same caller after the erasure
    arrived = 1_800_000_000.0
    before = _json.loads(outbox.message(req("/twilio/voice", voice_params()), arrived))
    status = _json.loads(outbox.message(req("/twilio/call-status", voice_params(
        CallStatus="completed", CallDuration="30")), arrived + 60))
    after = _json.loads(outbox.message(req("/twilio/voice", voice_params(CallSid="CA" + "9" * 32)),
                                       1_800_000_900.0))
    store = FakeStorage()
    store.erasures = {CALLER: {"acme": 1_800_000_500.0}}
    # When the outbox replays them
    answers = [replay.replay(body, store, "https://calls.example.jp") for body in (before, status, after)]
    # Then the erased call is not written back; the newer call is recorded
    assert answers == [replay.ERASED, replay.ERASED, "/twilio/voice"]
    assert SID not in store.calls and "CA" + "9" * 32 in store.calls


def test_an_erasure_from_another_account_does_not_drop_the_callback():
    import json as _json

    from voice_webhook import outbox, replay

    # Given the caller erased from another account after the callback arrived
    body = _json.loads(outbox.message(req("/twilio/voice", voice_params()), 1_800_000_000.0))
    store = FakeStorage()
    store.erasures = {CALLER: {"other-clinic": 1_800_000_500.0}}
    # When it is replayed, then it is recorded in its own account
    assert replay.replay(body, store, "https://calls.example.jp") == "/twilio/voice"
    assert SID in store.calls


POOL_NUMBER = "+815033334444"
POOL_ROW = {**ROW, "number": POOL_NUMBER, "kind": "pool", "pool": "google"}


def _pool_store(session="s-1"):
    store = FakeStorage(rows={NUMBER: ROW, POOL_NUMBER: POOL_ROW})
    store.leases[POOL_NUMBER] = {
        "number": POOL_NUMBER, "account": ROW["account"], "pool": "google", "session_id": session,
        "leased_at": 1_800_000_000.0 - 300, "expires_at": 1_800_000_000.0 - 10,
        "released_at": 1_800_000_000.0 - 10,
        "attribution": json.dumps({"session_id": session, "gclid": f"G-{session}"}),
    }
    return store


def _pool_call(d, sid=SID, caller=CALLER):
    params = voice_params(CallSid=sid, To=POOL_NUMBER, Called=POOL_NUMBER, From=caller, Caller=caller)
    flow.voice(req("/twilio/voice", params), d)
    ended = {**params, "CallStatus": "completed", "CallDuration": "40"}
    flow.call_status(req("/twilio/call-status", ended), d)


def test_a_pool_calls_end_marks_its_holder_called_and_a_redial_after_the_number_moved_stays_theirs():
    # Given a call to a pool number whose last holder is session s-1, and the call ends
    store = _pool_store()
    d = deps(store)
    _pool_call(d)
    # Then the caller's row remembers the call and the number's row says its holder called
    assert store.remembered == [(CALLER, ROW["account"], POOL_NUMBER, "s-1", 1_800_000_000.0, True)]
    assert store.leases[POOL_NUMBER]["called_session"] == "s-1"
    # When the number goes to session s-2 and the same caller calls it again
    store.leases[POOL_NUMBER].update(session_id="s-2", leased_at=1_800_000_000.0 + 1,
                                     attribution=json.dumps({"session_id": "s-2", "gclid": "G-s-2"}))
    redial = "CA" + "3" * 32
    _pool_call(d, sid=redial)
    # Then the redial is s-1's, as the first call was
    assert store.calls[redial]["attribution"]["session_id"] == "s-1"
    assert store.calls[redial]["attribution"]["basis"] == "repeat_caller"
    # while another caller's call is s-2's
    other = "CA" + "4" * 32
    _pool_call(d, sid=other, caller="+819011112222")
    assert store.calls[other]["attribution"]["session_id"] == "s-2"


@pytest.mark.parametrize("case", ["static number", "hidden caller", "test caller", "no session"])
def test_only_a_pool_call_of_a_known_caller_with_a_session_is_remembered(case):
    store = _pool_store()
    d = deps(store)
    if case == "static number":
        flow.voice(req("/twilio/voice", voice_params()), d)
        flow.call_status(req("/twilio/call-status", voice_params(CallStatus="completed")), d)
    elif case == "hidden caller":
        _pool_call(d, caller="anonymous")
    elif case == "test caller":
        routing = {**ROUTING, "test_callers": [CALLER]}
        store.rows[POOL_NUMBER] = {**POOL_ROW, "routing": json.dumps(routing, ensure_ascii=False)}
        _pool_call(d)
    else:
        store.leases.pop(POOL_NUMBER)
        _pool_call(d)
    assert store.remembered == [] and "called_session" not in store.leases.get(POOL_NUMBER, {})


def test_a_failed_mark_is_counted_and_the_call_stays_recorded():
    store = _pool_store()

    def down(*a, **k):
        raise ConnectionError("down")

    store.remember_pool_call = down
    d = deps(store)
    _pool_call(d)
    assert store.calls[SID]["status"] == "missed" and d.metrics.counts.get("WebhookFailures") == 1


def test_a_call_not_surely_its_sessions_is_remembered_for_a_redial_but_does_not_mark_the_holder():
    # Given a pool number s-1 took half a minute ago, a minute after s-0 released it
    store = _pool_store()
    store.leases[POOL_NUMBER].update(prev_session_id="s-0", prev_released_at=1_800_000_000.0 - 60,
                                     leased_at=1_800_000_000.0 - 30, expires_at=1_800_000_000.0 + 600,
                                     released_at=1_800_000_000.0 + 600)
    d = deps(store)
    # When a call to it ends (it may be s-0's late call: confidence below 0.8)
    _pool_call(d)
    assert store.calls[SID]["confidence"] < 0.8
    # Then the caller's row remembers it, but s-1 is not marked as having called
    assert [r[-1] for r in store.remembered] == [False]
    assert "called_session" not in store.leases[POOL_NUMBER]


def test_a_redial_whose_origin_a_status_callback_rebuilds_is_still_the_first_calls_and_is_remembered():
    # Given s-1's visitor called (remembered as the call ended) and the number went to s-2
    store = _pool_store()
    d = deps(store)
    _pool_call(d)
    store.leases[POOL_NUMBER].update(session_id="s-2", leased_at=1_800_000_000.0 + 1,
                                     attribution=json.dumps({"session_id": "s-2", "gclid": "G-s-2"}))
    # When the caller redials and the voice write fails, so the status callback rebuilds the call
    redial = "CA" + "5" * 32
    params = voice_params(CallSid=redial, To=POOL_NUMBER, Called=POOL_NUMBER)
    store.fail_write = True
    flow.voice(req("/twilio/voice", params), d)
    store.fail_write = False
    ended = {**params, "CallStatus": "completed", "CallDuration": "40",
             "Timestamp": "Fri, 15 Jan 2027 08:10:00 +0000"}  # ten minutes after the first call
    flow.call_status(req("/twilio/call-status", ended), d)
    # Then the rebuilt call is s-1's, as the live one would have been, and its end was remembered
    assert store.calls[redial]["attribution"]["session_id"] == "s-1"
    assert store.calls[redial]["attribution"]["basis"] == "repeat_caller"
    assert len(store.remembered) == 2
