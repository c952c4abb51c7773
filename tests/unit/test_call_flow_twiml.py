"""Golden TwiML of every call-flow shape (issue 18): what Twilio is told to do, byte for byte, for
a menu, a forward, each ring-group strategy, a closed day and the storage-down first target."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calltrack.call_flows import branch, compile_flow, member_order
from voice_webhook import flow_twiml as ft

XML = '<?xml version="1.0" encoding="UTF-8"?>'
SID = "CA" + "1" * 32
CTX = ft.CallContext(
    base="https://calls.example.jp", caller_id="+819012345678", language="ja-JP", started=1764550800,
    call_sid=SID,
)
MEMBERS = [{"agent": "tanaka", "number": "+819011112222"}, {"agent": "suzuki", "number": "+819033334444"}]
DIAL = 'action="https://calls.example.jp/twilio/{action}" callerId="+819012345678" method="POST" timeout="20"'


def number(agent: str, phone: str) -> str:
    return (
        f'<Number method="POST" url="https://calls.example.jp/twilio/whisper?lang=ja-JP&amp;agent={agent}'
        f'&amp;call={SID}">{phone}</Number>'
    )


DIAL_STATUS = DIAL.format(action="dial-status?t=1764550800&amp;lang=ja-JP")
TANAKA, SUZUKI = number("tanaka", "+819011112222"), number("suzuki", "+819033334444")


def flow(strategy: str = "round_robin", **over: Any) -> dict[str, Any]:
    spec = {
        "hours": None,
        "menu": {
            "prompt": "1を押してください",
            "options": {"1": "desk"},
            "timeout_to": "desk",
            "timeout_seconds": 5,
        },
        "targets": {
            "desk": {"ring_group": {"strategy": strategy, "ring_seconds": 20, "members": MEMBERS}},
            "office": {"forward": "+81312345678"},
        },
        "after_hours": {"voicemail": True, "message": "本日の受付は終了しました。", "target": None},
        **over,
    }
    return compile_flow("main", spec, today=date(2026, 12, 1))


GOLDEN = {
    # finishOnKey="": "#" may be a menu key (Twilio's default would end the input on it)
    "menu": '<Response><Gather action="https://calls.example.jp/twilio/menu?t=1764550800&amp;lang=ja-JP&amp;f=main'
    '&amp;rec=0" '
    'finishOnKey="" method="POST" '
    'numDigits="1" timeout="5"><Say language="ja-JP">1を押してください</Say></Gather>'
    '<Redirect method="POST">https://calls.example.jp/twilio/menu?t=1764550800&amp;lang=ja-JP&amp;f=main&amp;rec=0</Redirect></Response>',
    "forward": f"<Response><Dial {DIAL_STATUS}><Number>+81312345678</Number>"
    "</Dial></Response>",
    "simultaneous": f"<Response><Dial {DIAL_STATUS}>{TANAKA}{SUZUKI}</Dial></Response>",
    "round_robin": "<Response><Dial "
    + DIAL.format(action="ring-next?t=1764550800&amp;lang=ja-JP&amp;f=main&amp;g=desk"
                  "&amp;o=1.0&amp;i=1&amp;rec=0")
    + f">{SUZUKI}</Dial></Response>",
    "sequential": "<Response><Dial "
    + DIAL.format(action="ring-next?t=1764550800&amp;lang=ja-JP&amp;f=main&amp;g=desk"
                  "&amp;o=0.1&amp;i=1&amp;rec=0")
    + f">{TANAKA}</Dial></Response>",
    "sequential_last": f"<Response><Dial {DIAL_STATUS}>{SUZUKI}</Dial></Response>",
    # the <Record>'s action hangs up: without one Twilio requests this document again (a loop)
    "after_hours": '<Response><Say language="ja-JP">本日の受付は終了しました。</Say><Record '
    'action="https://calls.example.jp/twilio/voicemail-done" maxLength="120" method="POST" '
    'playBeep="true" recordingStatusCallback="https://calls.example.jp/twilio/recording" '
    'recordingStatusCallbackEvent="completed absent" recordingStatusCallbackMethod="POST" />'
    "<Hangup /></Response>",
    "closed_message": '<Response><Say language="ja-JP">本日の受付は終了しました。</Say><Hangup /></Response>',
}


def test_open_with_a_menu_gathers_one_key_and_redirects_on_timeout():
    assert ft.incoming(CTX, flow(), "open", counters={}, sticky=None).twiml == XML + GOLDEN["menu"]


def test_a_forward_target_is_one_number():
    assert ft.dial_target(CTX, flow(), "office", counters={}, sticky=None).twiml == XML + GOLDEN["forward"]


def test_simultaneous_rings_every_member_each_with_its_agent():
    step = ft.dial_target(CTX, flow("simultaneous"), "desk", counters={}, sticky=None)
    assert (step.twiml, step.bump) == (XML + GOLDEN["simultaneous"], None)


def test_round_robin_starts_at_the_counter_and_bumps_it():
    step = ft.dial_target(CTX, flow(), "desk", counters={"rr#main#desk": 3}, sticky=None)
    assert (step.twiml, step.bump) == (XML + GOLDEN["round_robin"], "rr#main#desk")


def test_sequential_starts_with_the_first_member_and_the_last_one_ends_with_the_dial_result():
    step = ft.dial_target(CTX, flow("sequential"), "desk", counters={"rr#main#desk": 3}, sticky=None)
    assert (step.twiml, step.bump) == (XML + GOLDEN["sequential"], None)
    assert (
        ft.dial_member(CTX, flow("sequential"), "desk", [0, 1], 1, announce=False)
        == XML + GOLDEN["sequential_last"]
    )


def test_closed_says_the_message_and_takes_a_voicemail_or_hangs_up():
    assert ft.incoming(CTX, flow(), "holiday", counters={}, sticky=None).twiml == XML + GOLDEN["after_hours"]
    quiet = flow(after_hours={"voicemail": False, "message": "本日の受付は終了しました。", "target": None})
    assert (
        ft.incoming(CTX, quiet, "after-hours", counters={}, sticky=None).twiml
        == XML + GOLDEN["closed_message"]
    )


def test_closed_with_an_after_hours_target_rings_it():
    night = flow(after_hours={"voicemail": False, "message": None, "target": "office"})
    step = ft.incoming(CTX, night, "after-hours", counters={}, sticky=None)
    assert step.twiml == XML + GOLDEN["forward"] and step.fields["flow_branch"] == "after-hours"


def test_closed_with_voicemail_and_no_message_asks_for_a_message_not_to_call_again():
    # Given after hours with voicemail and no message of the account's own
    night = flow(after_hours={"voicemail": True, "message": None, "target": None})
    step = ft.incoming(CTX, night, "after-hours", counters={}, sticky=None)
    # Then the caller is asked to leave a message before the tone (not told to call again)
    said = step.twiml.split("<Say", 1)[1]
    assert "メッセージ" in said and "おかけ直し" not in said and "<Record" in step.twiml
    assert step.fields["voicemail"] is True


def test_an_after_hours_target_with_voicemail_leads_to_it_when_nobody_answers():
    # Given after hours ringing the office, with voicemail, for an account whose calls have none
    night = flow(after_hours={"voicemail": True, "message": None, "target": "office"})
    step = ft.incoming(CTX, night, "after-hours", counters={}, sticky=None)
    # Then the office rings and its <Dial> result offers the voicemail (/twilio/dial-status vm=1)
    assert "+81312345678</Number>" in step.twiml
    assert "dial-status?t=1764550800&amp;lang=ja-JP&amp;vm=1" in step.twiml
    # And without voicemail it does not
    quiet = flow(after_hours={"voicemail": False, "message": None, "target": "office"})
    assert "vm=1" not in ft.incoming(CTX, quiet, "after-hours", counters={}, sticky=None).twiml


def test_storage_down_rings_the_first_target_at_once():
    assert ft.fail_open(CTX, flow("sequential")) == XML + GOLDEN["simultaneous"]


def test_a_repeat_callers_agent_goes_first_without_moving_the_rotation():
    group = {"strategy": "round_robin", "members": MEMBERS + [{"agent": "sato", "number": "+819055556666"}]}
    assert member_order(group, counter=0, sticky="sato") == ([2, 0, 1], False)
    assert member_order(group, counter=4, sticky="gone") == ([1, 2, 0], True)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 1, 8, 59), "after-hours"),
        (datetime(2026, 12, 1, 9, 0), "open"),
        (datetime(2026, 12, 1, 18, 0), "after-hours"),
        (datetime(2026, 11, 23, 10, 0), "holiday"),
        (datetime(2026, 12, 29, 10, 0), "closed"),
    ],
)
def test_branch_by_local_time(local, expected):
    hours = {
        "week": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]]},
        "holidays": "jp",
        "closed": ["2026-12-29"],
    }
    compiled = flow(hours=hours)
    assert branch(compiled, local.replace(tzinfo=ZoneInfo("Asia/Tokyo"))) == expected
