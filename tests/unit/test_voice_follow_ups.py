"""A call's follow-ups (/twilio/menu, /twilio/ring-next) after the account's config changed: they
record as the call decided when it came in (announced or not), and ring the group as it is now,
even on a warm process whose cached row is older."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree as ET

from calltrack import clock
from calltrack.account_config import normalize_config, parse_config, tracking_rows
from calltrack.twilio_edge import TwilioRequest
from tests.support.accounts import account_config
from tests.unit.test_voice_flow import FakeStorage
from voice_webhook import flow

NUMBER = "+815012340001"
CALLER = "+819012345678"
SID = "CA" + "1" * 32
NOW = 1_796_000_400.0  # a Tuesday morning in Tokyo (open)
TANAKA = {"agent": "tanaka", "number": "090-1111-2222"}
SUZUKI = {"agent": "suzuki", "number": "090-3333-4444"}
SATO = {"agent": "sato", "number": "090-5555-6666"}


def rows(members: list[dict[str, str]], *, recording: bool, menu: bool = False,
         night_voicemail: bool = False) -> dict[str, dict[str, Any]]:
    """The number rows ``calltrack apply`` writes for a sequential group (behind a menu or not; with
    ``night_voicemail`` the office is closed at NOW and after hours rings the group, then voicemail)."""
    group = {"strategy": "sequential", "members": members}
    flow_cfg: dict[str, Any] = {"targets": {"desk": {"ring_group": group}}}
    if menu:
        flow_cfg["menu"] = {"prompt": "受付は1を", "options": {"1": "desk"}}
    if night_voicemail:
        flow_cfg["hours"] = {"mon-fri": "20:00-21:00"}
        flow_cfg["after_hours"] = {"target": "desk", "voicemail": True}
    config = account_config("clinic", recording={"enabled": recording}, flows={"main": flow_cfg},
                            numbers=[{"number": "050-1234-0001", "channel": "flyer", "flow": "main"}])
    with clock.frozen(datetime(2026, 11, 30, tzinfo=UTC)):
        built = tracking_rows(normalize_config(parse_config(config)))
    return {n: {**r, "routing": json.dumps(r["routing"], ensure_ascii=False)} for n, r in built.items()}


def process(storage: FakeStorage) -> flow.Deps:
    """One Lambda process (its own routing cache)."""
    return flow.Deps(public_url="https://calls.example.jp", storage=storage, metrics=flow.MetricSink(),
                     log=logging.getLogger("test"), cache=flow.RoutingCache(), now=lambda: NOW)


def post(path: str, query: str = "", **params: str) -> TwilioRequest:
    params = {"CallSid": SID, "To": NUMBER, "From": CALLER, **params}
    return TwilioRequest("POST", path, query, {}, params, {k: [v] for k, v in params.items()})


def incoming(deps: flow.Deps, sid: str = SID) -> ET.Element:
    _, body = flow.voice(post("/twilio/voice", CallSid=sid), deps)
    return ET.fromstring(body)


def action_of(element: ET.Element | None) -> tuple[str, str]:
    assert element is not None
    url = urlparse(element.get("action") or "")
    return url.path, url.query


def no_answer(deps: flow.Deps, path: str, query: str) -> ET.Element:
    _, body = flow.ring_next(post(path, query, DialCallStatus="no-answer", CallStatus="in-progress"), deps)
    return ET.fromstring(body)


def warm_process_from_before(old: dict[str, dict[str, Any]]) -> flow.Deps:
    """A process that answered a call to the number before the apply: its cache holds the old row."""
    deps = process(FakeStorage(old))
    incoming(deps, sid="CA" + "2" * 32)
    return deps


def test_the_next_member_is_not_recorded_when_the_call_came_in_without_recording():
    # Given a process whose cached row still records, and an apply that turned recording off
    before, after = rows([TANAKA, SUZUKI], recording=True), rows([TANAKA, SUZUKI], recording=False)
    warm = warm_process_from_before(before)
    # When a call comes in on another process (no announcement, no recording), tanaka does not
    # answer and Twilio posts the <Dial> action to the warm process
    first = incoming(process(FakeStorage(after)))
    assert first.find("Say") is None and first.find("Dial").get("record") is None
    # (its read failing, so it goes by its cached row, which still records: only ``rec`` says no)
    warm.storage = FakeStorage(after, fail_read=True)
    second = no_answer(warm, *action_of(first.find("Dial")))
    # Then suzuki rings unrecorded: the caller heard no announcement
    assert [n.text for n in second.iter("Number")] == ["+819033334444"]
    assert second.find("Dial").get("record") is None


def test_a_call_announced_as_recorded_stays_recorded_to_its_last_member():
    # Given a call that came in recorded (announced), its next member rung after recording was
    # turned off for the account: the caller consented, the recording goes on as announced
    before, after = rows([TANAKA, SUZUKI], recording=True), rows([TANAKA, SUZUKI], recording=False)
    first = incoming(process(FakeStorage(before)))
    assert first.find("Say") is not None and first.find("Dial").get("record")
    second = no_answer(process(FakeStorage(after)), *action_of(first.find("Dial")))
    assert second.find("Dial").get("record") == first.find("Dial").get("record")


def test_a_menu_choice_after_recording_was_turned_on_does_not_record_an_unannounced_call():
    # Given a menu call that came in without recording (no announcement before the menu)
    before, after = rows([TANAKA], recording=False, menu=True), rows([TANAKA], recording=True, menu=True)
    gather = incoming(process(FakeStorage(before)))
    assert gather.find("Gather/Say") is not None and gather.find("Say") is None
    # When recording is turned on before the caller presses 1
    path, query = action_of(gather.find("Gather"))
    _, body = flow.menu(post(path, query, Digits="1"), process(FakeStorage(after)))
    # Then the dial does not record (nothing was announced)
    dial = ET.fromstring(body).find("Dial")
    assert dial is not None and dial.get("record") is None


def test_the_next_member_is_the_groups_as_applied_not_a_warm_processs_older_row():
    # Given a warm process whose cached row has suzuki, and an apply that replaced him with sato
    warm = warm_process_from_before(rows([TANAKA, SUZUKI], recording=False))
    after = rows([TANAKA, SATO], recording=False)
    first = incoming(process(FakeStorage(after)))
    # When tanaka does not answer and the action lands on the warm process
    warm.storage = FakeStorage(after)
    second = no_answer(warm, *action_of(first.find("Dial")))
    # Then sato rings, not the member removed from the group
    assert [n.text for n in second.iter("Number")] == ["+819055556666"]


def test_a_grown_group_goes_on_to_its_new_members_on_a_warm_process():
    # Given a warm process whose cached group has two members, and an apply that added a third
    warm = warm_process_from_before(rows([TANAKA, SUZUKI], recording=False))
    after = rows([TANAKA, SUZUKI, SATO], recording=False)
    first = incoming(process(FakeStorage(after)))
    warm.storage = FakeStorage(after)
    # When tanaka and then suzuki do not answer
    second = no_answer(warm, *action_of(first.find("Dial")))
    third = no_answer(warm, *action_of(second.find("Dial")))
    # Then the call goes on to sato instead of hanging up after the first member
    assert [n.text for n in third.iter("Number")] == ["+819055556666"]


def test_the_next_member_still_rings_from_the_cache_when_storage_is_down():
    # Given a warm process and storage failing when tanaka's <Dial> ends
    warm = process(FakeStorage(rows([TANAKA, SUZUKI], recording=False)))
    first = incoming(warm)
    warm.storage = FakeStorage(rows([TANAKA, SUZUKI], recording=False), fail_read=True)
    # Then suzuki rings from the cached row
    second = no_answer(warm, *action_of(first.find("Dial")))
    assert [n.text for n in second.iter("Number")] == ["+819033334444"]


def test_an_after_hours_group_with_voicemail_leads_to_it_after_its_last_member():
    # Given after hours ringing a two-member group, with voicemail, for an account whose calls
    # otherwise have none
    night = rows([TANAKA, SUZUKI], recording=False, night_voicemail=True)
    deps = process(FakeStorage(night))
    first = incoming(deps)
    assert [n.text for n in first.iter("Number")] == ["+819011112222"]
    # When tanaka does not answer, then suzuki rings, and his <Dial> result offers the voicemail
    second = no_answer(deps, *action_of(first.find("Dial")))
    assert [n.text for n in second.iter("Number")] == ["+819033334444"]
    path, query = action_of(second.find("Dial"))
    assert path == "/twilio/dial-status" and "vm=1" in query

