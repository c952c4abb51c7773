"""Calls (owned by functions/voice_webhook; recordings, reports and CRM update them).

Key names here are also used by voice_webhook's raw-boto3 path (it avoids importing PynamoDB
for cold start): table ``calls`` hash key ``call_sid``; GSI ``by-account`` on
(``account``, ``started_at``); stream NEW_AND_OLD_IMAGES feeds the rollup consumer.
``voice_webhook.store`` writes these attributes with the same names and DynamoDB types (a unit
test round-trips its items through this model).

Status: ringing < (missed | busy | failed | canceled | answered). ``status_rank`` orders who may
set it: 0 the voice webhook (ringing), 1 the statusCallback (the parent call's CallStatus; a call
that ended without a <Dial> result is "missed"), 2 the <Dial> action (authoritative: answered, or
missed with ``outcome_reason`` busy / no-answer / failed / canceled). A write with a rank not
above the stored one leaves the status alone, so duplicates and late retries change nothing.
``version`` is incremented by every write that changes the row (rollup ordering).
``started_at`` is ISO 8601 UTC with seconds resolution: ``2026-11-25T01:02:03Z``.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from calltrack.models.base import table_meta


class CallsByAccount(GlobalSecondaryIndex["Call"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    started_at = UnicodeAttribute(range_key=True)  # ISO 8601 UTC, sortable


class Call(Model):
    Meta = table_meta("calls", stream="NEW_AND_OLD_IMAGES", ttl="expire_at")
    call_sid = UnicodeAttribute(hash_key=True)
    account = UnicodeAttribute()
    started_at = UnicodeAttribute()
    tracking_number = UnicodeAttribute(null=True)
    caller = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="ringing")
    ring_seconds = NumberAttribute(null=True)
    talk_seconds = NumberAttribute(null=True)
    first_time = BooleanAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    campaign = UnicodeAttribute(null=True)
    keyword = UnicodeAttribute(null=True)
    confidence = NumberAttribute(null=True)
    attribution = JSONAttribute(null=True)  # gclid, utm, landing_page, referrer, session ...
    recording = JSONAttribute(null=True)
    # compact transcript (speaker, start seconds, text) and the call rules that hit (transcripts)
    transcript = JSONAttribute(null=True)
    rule_hits = JSONAttribute(null=True)
    stage = UnicodeAttribute(null=True)
    value = NumberAttribute(null=True)
    tags = ListAttribute(null=True)  # type: ignore[var-annotated]
    score = NumberAttribute(null=True)
    agent = UnicodeAttribute(null=True)
    # Source details beyond channel/campaign/keyword
    medium = UnicodeAttribute(null=True)
    source_kind = UnicodeAttribute(null=True)  # static | pool
    pool = UnicodeAttribute(null=True)
    # Caller details (caller itself is E.164 or null when hidden/invalid)
    caller_kind = UnicodeAttribute(null=True)  # number | anonymous | invalid | missing
    caller_name = UnicodeAttribute(null=True)
    caller_city = UnicodeAttribute(null=True)
    caller_state = UnicodeAttribute(null=True)
    caller_country = UnicodeAttribute(null=True)
    # Outcome bookkeeping
    status_rank = NumberAttribute(null=True)
    outcome_reason = UnicodeAttribute(null=True)  # DialCallStatus / CallStatus that set the status
    dial_status = UnicodeAttribute(null=True)
    call_status = UnicodeAttribute(null=True)
    call_duration = NumberAttribute(null=True)
    answered = BooleanAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)  # voice | dial-status | call-status
    updated_at = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    # Call flows (issue 18): the flow, its branch (open | after-hours | holiday | closed), the target
    # rung, the menu key pressed, an after-hours voicemail; a call from the account's test_callers.
    flow = UnicodeAttribute(null=True)
    flow_branch = UnicodeAttribute(null=True)
    target = UnicodeAttribute(null=True)
    menu_choice = UnicodeAttribute(null=True)
    voicemail = BooleanAttribute(null=True)
    test = BooleanAttribute(null=True)
    # The callback of a missed call (``GET /v1/callbacks``): done when someone called back.
    callback_status = UnicodeAttribute(null=True)  # done (open is derived: missed and not done)
    callback_at = UnicodeAttribute(null=True)
    callback_agent = UnicodeAttribute(null=True)
    callback_seconds = NumberAttribute(null=True)
    # The account's time zone (IANA) when the call was created: the rollups' local day and hour of
    # week (calltrack.call_items.CALL_TIMEZONE); absent on older calls
    timezone = UnicodeAttribute(null=True)
    # DynamoDB TTL (epoch seconds): started_at + the account's retention.calls_days (privacy)
    expire_at = NumberAttribute(null=True)
    by_account = CallsByAccount()


class Caller(Model):
    """One row per caller number: first-time vs repeat is a single conditional write.

    Keyed by the number alone (not account + number) so the voice webhook reads it in the same
    BatchGetItem as the tracking number, before it knows the account. Each account the caller has
    called adds one attribute, ``first#<account>`` = ``{"call_sid": ..., "at": ...}`` (map), set once
    with ``attribute_not_exists`` (``voice_webhook.store``); PynamoDB declares only the key.
    """

    Meta = table_meta("callers", ttl="expire_at")  # erasure marks and redial items expire
    # E.164, "redial#<E.164>" (the caller's last pool calls), or an erasure mark's "erased#<sha256>"
    caller = UnicodeAttribute(hash_key=True)


MODELS = [Call, Caller]
