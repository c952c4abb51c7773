"""Attribution of a call from the number row and the pool number's lease row."""

from __future__ import annotations

import json

import pytest

from calltrack.attribution import LATE_END, LATE_START, POOL_ONLY, SHARED_CONFIDENCE, attribute

NOW = 1_800_000_000.0
STATIC = {
    "number": "+815011112222",
    "account": "acme",
    "kind": "static",
    "channel": "flyer",
    "campaign": "winter",
}
POOL = {
    "number": "+815033334444",
    "account": "acme",
    "kind": "pool",
    "channel": "google-ads",
    "campaign": "brand",
    "pool": "google",
}
SESSION = {
    "keyword": "歯医者 渋谷",
    "gclid": "Cj0KCQ-test",
    "utm": {"source": "google", "medium": "cpc", "campaign": "brand", "term": "歯医者 渋谷"},
    "landing_page": "https://acme.example.jp/implant",
    "referrer": "https://www.google.com/",
    "session_id": "s-1",
    "visitor_id": "v-1",
}


def lease(**over):
    row = {
        "number": POOL["number"],
        "account": "acme",
        "pool": "google",
        "session_id": "s-1",
        "leased_at": NOW - 600,
        "expires_at": NOW + 600,
        "released_at": NOW + 600,
        "attribution": json.dumps(SESSION, ensure_ascii=False),
    }
    row.update(over)
    return row


def test_static_number_is_its_channel_and_campaign_with_full_confidence():
    a = attribute(STATIC, None, NOW)
    assert (a.channel, a.campaign, a.confidence, a.basis) == ("flyer", "winter", 1.0, "static")


def test_call_during_a_live_lease_carries_the_session_attribution():
    a = attribute(POOL, lease(), NOW)
    assert a.basis == "lease" and a.confidence == 1.0
    assert (a.channel, a.keyword, a.gclid) == ("google-ads", "歯医者 渋谷", "Cj0KCQ-test")
    assert a.utm["source"] == "google" and a.landing_page.endswith("/implant")
    assert a.session_id == "s-1"


def test_late_call_keeps_the_last_session_with_a_confidence_falling_with_the_gap():
    just_after = attribute(POOL, lease(expires_at=NOW - 60, released_at=NOW - 60), NOW, 120)
    later = attribute(POOL, lease(expires_at=NOW - 100 * 60, released_at=NOW - 100 * 60), NOW, 120)
    assert just_after.basis == later.basis == "late"
    assert just_after.gclid == later.gclid == "Cj0KCQ-test"
    assert LATE_START >= just_after.confidence > later.confidence >= LATE_END


def test_beyond_the_late_window_the_pool_channel_remains_without_session():
    a = attribute(POOL, lease(expires_at=NOW - 121 * 60, released_at=NOW - 121 * 60), NOW, 120)
    assert (a.basis, a.channel, a.gclid, a.keyword, a.confidence) == (
        "pool",
        "google-ads",
        None,
        None,
        POOL_ONLY,
    )


@pytest.mark.parametrize(
    "row",
    [
        None,
        {
            "number": POOL["number"],
            "account": "other",
            "session_id": "x",
            "expires_at": NOW + 60,
            "attribution": "{}",
        },
    ],
)
def test_no_lease_or_another_accounts_lease_gives_the_pool_channel_only(row):
    a = attribute(POOL, row, NOW)
    assert (a.basis, a.confidence, a.session_id) == ("pool", POOL_ONLY, None)


def test_a_number_moved_to_another_pool_gives_the_new_pools_channel_only_not_the_old_visitor():
    # Given a number an apply moved from pool "google" to pool "yahoo" while a google visitor's
    # lease is live (or within the late-call window)
    moved = {**POOL, "channel": "yahoo-ads", "pool": "yahoo"}
    # When a call reaches it, Then it is the yahoo pool's, without the google visitor's click
    a = attribute(moved, lease(), NOW)
    assert (a.basis, a.channel, a.gclid, a.session_id) == ("pool", "yahoo-ads", None, None)
    assert a.confidence == POOL_ONLY
    # while a lease of the pool it is in still carries its visitor
    assert attribute(moved, lease(pool="yahoo"), NOW).session_id == "s-1"


def test_number_shared_by_an_exhausted_pool_lowers_confidence():
    a = attribute(POOL, lease(shared_until=NOW - 60), NOW)
    assert a.confidence == pytest.approx(SHARED_CONFIDENCE)
    assert attribute(POOL, lease(kind="overflow"), NOW).confidence == pytest.approx(SHARED_CONFIDENCE)


def test_a_call_soon_after_the_previous_holder_released_the_number_is_ambiguous():
    # Given a live lease that began right after another session released the number
    row = lease(prev_released_at=NOW - 120, prev_session_id="s-0", leased_at=NOW - 60)
    # When a call comes in two minutes after that release
    attr = attribute(POOL, row, NOW, late_window_minutes=120)
    # Then the current session is named, below full confidence, and the other candidate too
    assert attr.session_id == "s-1" and attr.basis == "lease"
    assert 0.6 <= attr.confidence < 0.9
    assert attr.details()["previous_session_id"] == "s-0"


def test_ambiguity_fades_with_time_since_the_release_and_ends_with_the_window():
    confidences = [
        attribute(POOL, lease(prev_released_at=NOW - gap * 60, prev_session_id="s-0"), NOW, 120).confidence
        for gap in (1, 10, 30, 119, 121)
    ]
    assert confidences == sorted(confidences) and confidences[0] < confidences[1] < confidences[2]
    assert all(c < 1.0 for c in confidences[:4]) and confidences[4] == 1.0


def test_a_session_taking_back_its_own_number_is_not_ambiguous():
    attr = attribute(POOL, lease(prev_released_at=NOW - 60, prev_session_id="s-1"), NOW, 120)
    assert attr.confidence == 1.0 and attr.previous_session_id is None


def _earlier_call(at, **over):
    """The callers-row value a pool call of session s-1 to POOL's number left (``earlier_call_value``)."""
    from calltrack.attribution import earlier_call, earlier_call_attribute, earlier_call_value

    call = {
        "tracking_number": POOL["number"],
        "source_kind": "pool",
        "channel": "google-ads",
        "campaign": "brand",
        "keyword": "歯医者 渋谷",
        "confidence": 1.0,
        "attribution": attribute(POOL, lease(), NOW).details(),
        **over,
    }
    value = earlier_call_value(call, at)
    return earlier_call({earlier_call_attribute("acme"): value}, "acme") if value else None


def test_a_redial_to_a_number_handed_to_another_session_since_is_attributed_as_the_first_call():
    # Given session s-1's visitor called the number 12 minutes ago, and the number went to s-2 since
    earlier = _earlier_call(NOW - 720)
    row = lease(session_id="s-2", leased_at=NOW - 300, attribution=json.dumps({"session_id": "s-2"}),
                prev_session_id="s-1", prev_released_at=NOW - 700)
    # When the same caller calls the number again
    a = attribute(POOL, row, NOW, 120, earlier)
    # Then the call is s-1's, as their first call was, and s-2 is named as the other candidate
    assert (a.session_id, a.basis) == ("s-1", "repeat_caller")
    assert (a.gclid, a.keyword) == ("Cj0KCQ-test", "歯医者 渋谷")
    assert a.channel == "google-ads" and a.utm["campaign"] == "brand"
    assert a.confidence == LATE_START and a.gap_minutes == 12.0
    assert a.details()["previous_session_id"] == "s-2"
    # while another caller's call is the holder's, as always
    assert attribute(POOL, row, NOW, 120, None).session_id == "s-2"


@pytest.mark.parametrize(
    "why, row_over, earlier_at",
    [
        ("the number is still the first caller's", {}, NOW - 720),
        ("the holder took it before that call", {"session_id": "s-2", "leased_at": NOW - 800}, NOW - 720),
        ("beyond the late-call window", {"session_id": "s-2", "leased_at": NOW - 300}, NOW - 3 * 3600),
    ],
)
def test_a_repeat_call_keeps_the_lease_attribution_otherwise(why, row_over, earlier_at):
    holder = row_over.get("session_id", "s-1")
    row = lease(**row_over, attribution=json.dumps({**SESSION, "session_id": holder}))
    a = attribute(POOL, row, NOW, 120, _earlier_call(earlier_at))
    assert a.basis != "repeat_caller", why


def test_only_a_pool_call_with_a_session_is_remembered_for_a_redial():
    assert _earlier_call(NOW, source_kind="static") is None
    assert _earlier_call(NOW, attribution={"basis": "pool"}) is None
    # another number's earlier call does not count for this one
    other = _earlier_call(NOW - 60, tracking_number="+815099990000")
    assert attribute(POOL, lease(session_id="s-2", leased_at=NOW - 30), NOW, 120, other).basis == "lease"



def _redial(earlier, at):
    """What the redial at ``at`` leaves on the caller's row (as its call-status writes it)."""
    from calltrack.attribution import earlier_call, earlier_call_attribute, earlier_call_value

    call = {"tracking_number": POOL["number"], "source_kind": "pool", "confidence": 0.9,
            "attribution": attribute(POOL, _holder_s2(), at, 120, earlier).details()}
    return earlier_call({earlier_call_attribute("acme"): earlier_call_value(call, at)}, "acme")


def _holder_s2():
    return lease(session_id="s-2", leased_at=NOW - 600, attribution=json.dumps({"session_id": "s-2"}))


def test_every_redial_of_a_caller_stays_with_the_first_calls_session():
    # Given s-1's visitor called 15 minutes ago, the number went to s-2 ten minutes ago, and the
    # caller redialled five minutes ago (attributed to s-1, and remembered as it ended)
    earlier = _redial(_earlier_call(NOW - 900), NOW - 300)
    # When they dial a third time
    a = attribute(POOL, _holder_s2(), NOW, 120, earlier)
    # Then that call is s-1's too: the number changed hands after their first call, not their last
    assert (a.session_id, a.basis) == ("s-1", "repeat_caller")


def test_the_redial_window_runs_from_the_sessions_release_when_its_page_stayed_open_after_the_call():
    # Given s-1's visitor called 125 minutes ago but kept the page open until 10 minutes ago, when
    # s-1 released the number and s-2 took it
    row = lease(session_id="s-2", leased_at=NOW - 590, attribution=json.dumps({"session_id": "s-2"}),
                prev_session_id="s-1", prev_released_at=NOW - 600)
    # When the caller dials again, 125 minutes after the call (the window is 120)
    a = attribute(POOL, row, NOW, 120, _earlier_call(NOW - 125 * 60))
    # Then it is still theirs: the number rested for nobody from the call to the release
    assert (a.session_id, a.basis) == ("s-1", "repeat_caller")
    # but not when the release was long ago too
    old = {**row, "prev_released_at": NOW - 125 * 60}
    assert attribute(POOL, old, NOW, 120, _earlier_call(NOW - 125 * 60)).session_id == "s-2"
