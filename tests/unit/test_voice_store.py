"""DynamoStorage: request shapes and counts, and items that PynamoDB's Call model reads back."""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

from calltrack.attribution import attribute
from voice_webhook import flow, store
from voice_webhook.store import DynamoStorage

TABLES = {"numbers": "t-numbers", "leases": "t-leases", "calls": "t-calls", "callers": "t-callers"}
SID = "CA" + "f" * 32


class FakeClient:
    """Records requests; builds the item an UpdateItem would create on an empty row."""

    def __init__(self, *, cancel_reasons=None, number_row=None, callers_row=None, unprocessed=None,
                 redial_row=None):
        self.requests: list[tuple[str, dict]] = []
        self.items: dict[str, dict] = {}
        self.cancel_reasons = cancel_reasons
        self.number_row = number_row
        self.callers_row = callers_row
        self.redial_row = redial_row
        self.unprocessed = unprocessed or {}

    def _apply(self, kwargs):
        names, values = kwargs["ExpressionAttributeNames"], kwargs["ExpressionAttributeValues"]
        item = self.items.setdefault(kwargs["Key"]["call_sid"]["S"], dict(kwargs["Key"]))
        for name, value in re.findall(
            r"(#\w+) = (?:if_not_exists\(#\w+, )?(:\w+)", kwargs["UpdateExpression"]
        ):
            if names[name] == "version":
                item["version"] = {"N": "1"}
            else:
                item[names[name]] = values[value]
        return item

    def batch_get_item(self, **kwargs):
        self.requests.append(("BatchGetItem", kwargs))
        responses = {"t-numbers": [self.number_row] if self.number_row else [], "t-leases": []}
        if "t-callers" in kwargs["RequestItems"]:
            responses["t-callers"] = [r for r in (self.callers_row, self.redial_row) if r]
        return {"Responses": responses, "UnprocessedKeys": self.unprocessed}

    def update_item(self, **kwargs):
        self.requests.append(("UpdateItem", kwargs))
        existing = self.items.get(kwargs["Key"]["call_sid"]["S"]) or {}
        if kwargs.get("ConditionExpression") == "attribute_not_exists(#account)" and "account" in existing:
            raise ClientError(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "x"}}, "UpdateItem"
            )
        return {"Attributes": self._apply(kwargs)}

    def transact_write_items(self, **kwargs):
        self.requests.append(("TransactWriteItems", kwargs))
        reasons = self.cancel_reasons
        if reasons and isinstance(reasons[0], list):  # one list of reasons per transaction, in turn
            reasons = self.cancel_reasons.pop(0) if self.cancel_reasons else None
        if reasons:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "x"},
                    "CancellationReasons": [{"Code": c} for c in reasons],
                },
                "TransactWriteItems",
            )
        self._apply(kwargs["TransactItems"][0]["Update"])


ROW = {
    "number": "+815033334444",
    "account": "acme",
    "kind": "pool",
    "channel": "google-ads",
    "campaign": "brand",
    "pool": "google",
    "routing": json.dumps({"forward_to": "+81312345678"}),
}
LEASE = {
    "number": ROW["number"],
    "account": "acme",
    "session_id": "s1",
    "leased_at": 1000,
    "expires_at": 5000,
    "attribution": json.dumps(
        {
            "keyword": "歯医者",
            "gclid": "G1",
            "utm": {"source": "google"},
            "landing_page": "https://a.example/lp",
            "referrer": "https://www.google.com/",
        }
    ),
}
PARAMS = {
    "CallSid": SID,
    "To": ROW["number"],
    "From": "+819012345678",
    "CallerName": "山田",
    "FromCity": "渋谷区",
}


def test_first_time_caller_is_one_transaction_and_items_round_trip_through_the_call_model():
    from calltrack.models.calls import Call

    client = FakeClient()
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, LEASE, start_epoch=2000, created_by="voice")
    assert (
        store.write_origin(
            SID, fields, caller="+819012345678", first_time=True, now_iso="2026-01-01T00:00:00Z"
        )
        == "created"
    )
    assert [r[0] for r in client.requests] == ["TransactWriteItems"]
    mark = client.requests[0][1]["TransactItems"][1]["Update"]
    assert mark["TableName"] == "t-callers" and mark["Key"] == {"caller": {"S": "+819012345678"}}
    assert mark["ConditionExpression"] == "attribute_not_exists(#first)"
    assert mark["ExpressionAttributeNames"] == {"#first": "first#acme"}
    # the outcome writes add their attributes too
    store.apply_outcome(
        SID,
        {"dial_status": "completed", "ended_at": "2026-01-01T00:01:00Z"},
        {
            "status": "answered",
            "talk_seconds": 42,
            "ring_seconds": 7,
            "answered": True,
            "outcome_reason": "completed",
        },
        rank=2,
        marker="dial_status",
        now_iso="x",
    )
    store.apply_outcome(
        SID,
        {"call_status": "completed", "call_duration": 50, "ended_at": "x"},
        {"status": "missed"},
        rank=1,
        marker="call_status",
        now_iso="x",
    )
    raw = client.items[SID]
    call = Call.from_raw_data(raw)
    assert call.account == "acme" and call.first_time is True
    assert call.attribution["gclid"] == "G1" and call.attribution["utm"] == {"source": "google"}
    assert call.keyword == "歯医者" and call.confidence == 1.0
    assert call.talk_seconds == 42 and call.answered is True and call.status_rank == 1
    assert call.caller_city == "渋谷区" and call.version == 1
    # every attribute written is declared on the model with the same DynamoDB type
    declared = Call.get_attributes()
    for name, value in raw.items():
        assert name in declared, name
        assert next(iter(value)) == declared[name].attr_type, name


def test_the_call_is_created_stamped_with_the_accounts_zone_in_the_origin_write():
    from calltrack.models.calls import Call

    # Given a number whose routing carries the account's zone
    row = {**ROW, "routing": json.dumps({"forward_to": "+81312345678", "timezone": "America/New_York"})}
    client = FakeClient()
    fields = flow.origin_fields(PARAMS, row, None, start_epoch=2000, created_by="voice")
    # When the call's origin is written
    assert (
        DynamoStorage(client, TABLES).write_origin(
            SID, fields, caller="+819012345678", first_time=True, now_iso="2026-01-01T00:00:00Z"
        )
        == "created"
    )
    # Then the one write that creates the call carries the zone (no request added)
    assert [r[0] for r in client.requests] == ["TransactWriteItems"]
    assert client.items[SID]["timezone"] == {"S": "America/New_York"}
    assert Call.from_raw_data(client.items[SID]).timezone == "America/New_York"
    # And a routing without a zone (a number row from before) writes no stamp at all
    bare = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    written = DynamoStorage(FakeClient(), TABLES).calls.origin_update(SID, bare, "x")
    assert "timezone" not in written["ExpressionAttributeNames"].values()


def test_a_racing_first_call_that_loses_is_written_as_a_repeat_call():
    # Given the read saw no first call, but another call of this caller marked it meanwhile
    client = FakeClient(cancel_reasons=["None", "ConditionalCheckFailed"])
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    assert store.write_origin(SID, fields, caller="+819012345678", first_time=True, now_iso="x") == "created"
    assert [r[0] for r in client.requests] == ["TransactWriteItems", "UpdateItem"]
    assert client.items[SID]["first_time"] == {"BOOL": False}


@pytest.mark.parametrize("reasons", [["None", "TransactionConflict"], ["TransactionConflict", "None"]])
def test_a_conflict_on_the_transaction_still_records_the_call_without_first_time(reasons):
    # Given the first-time transaction is cancelled by a conflict (the caller's row is being
    # written by their call to another account, or the call row by a Twilio retry)
    client = FakeClient(cancel_reasons=reasons)
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    # When the call is written
    outcome = store.write_origin(SID, fields, caller="+819012345678", first_time=True, now_iso="x")
    # Then it is recorded with one more update, first_time left unknown rather than guessed
    assert outcome == "created"
    assert [r[0] for r in client.requests] == ["TransactWriteItems", "UpdateItem"]
    assert client.items[SID]["account"] == {"S": "acme"} and "first_time" not in client.items[SID]


def test_first_time_caller_committed_is_stored_as_first_time():
    client = FakeClient()
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    store.write_origin(SID, fields, caller="+819012345678", first_time=True, now_iso="x")
    assert client.items[SID]["first_time"] == {"BOOL": True}


def test_twilio_retry_of_a_recorded_call_is_a_duplicate():
    # Given a call already written (its caller now marked for this account)
    client = FakeClient()
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    store.write_origin(SID, fields, caller="+819012345678", first_time=True, now_iso="x")
    # When Twilio retries the webhook: the read now sees the caller, so it is a plain update
    outcome = store.write_origin(SID, fields, caller="+819012345678", first_time=False, now_iso="y")
    # Then nothing more is written
    assert outcome == "duplicate"
    assert client.items[SID]["first_time"] == {"BOOL": True}
    assert client.items[SID]["updated_at"] == {"S": "x"} and client.items[SID]["version"] == {"N": "1"}


def test_duplicate_voice_webhook_writes_nothing_more():
    client = FakeClient(cancel_reasons=["ConditionalCheckFailed", "ConditionalCheckFailed"])
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    assert store.write_origin(SID, fields, caller="+8190", first_time=None, now_iso="x") == "duplicate"
    assert len(client.requests) == 1


def test_known_repeat_caller_is_a_single_update():
    client = FakeClient()
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    store.write_origin(SID, fields, caller="+8190", first_time=False, now_iso="x")
    assert [r[0] for r in client.requests] == ["UpdateItem"]
    assert "attribute_not_exists(#account)" == client.requests[0][1]["ConditionExpression"]


def test_read_is_one_batch_get_of_number_lease_and_callers_row():
    client = FakeClient(number_row={k: {"S": v} for k, v in ROW.items()})
    row, lease, callers = DynamoStorage(client, TABLES).read_routing(ROW["number"], "+819012345678")
    assert [r[0] for r in client.requests] == ["BatchGetItem"]
    assert set(client.requests[0][1]["RequestItems"]) == {"t-numbers", "t-leases", "t-callers"}
    assert client.requests[0][1]["RequestItems"]["t-callers"] == {
        "Keys": [{"caller": {"S": "+819012345678"}}, {"caller": {"S": "redial#+819012345678"}}]
    }
    assert row["account"] == "acme" and lease is None and callers is None
    assert store.is_first_call(callers, "acme") is True
    assert attribute(row, lease, 0).basis == "pool"


def test_callers_row_tells_first_time_per_account():
    # Given a caller whose row records a first call to acme only
    seen = {"caller": {"S": "+819012345678"}, "first#acme": {"M": {"call_sid": {"S": "CA1"}}}}
    client = FakeClient(number_row={k: {"S": v} for k, v in ROW.items()}, callers_row=seen)
    # When the webhook reads it
    _, _, callers = DynamoStorage(client, TABLES).read_routing(ROW["number"], "+819012345678")
    # Then they are a repeat caller for acme and a first-time caller for any other account
    assert store.is_first_call(callers, "acme") is False
    assert store.is_first_call(callers, "other-shop") is True


def test_throttled_callers_read_leaves_first_time_unknown_and_the_write_decides():
    # Given the callers key comes back unprocessed
    unprocessed = {"t-callers": {"Keys": [{"caller": {"S": "+819012345678"}}]}}
    client = FakeClient(number_row={k: {"S": v} for k, v in ROW.items()}, unprocessed=unprocessed)
    s = DynamoStorage(client, TABLES)
    _, _, callers = s.read_routing(ROW["number"], "+819012345678")
    assert store.is_first_call(callers, "acme") is None
    # When the call is written with first_time unknown
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    s.write_origin(SID, fields, caller="+819012345678", first_time=None, now_iso="x")
    # Then the conditional write on the callers row decides it
    assert [r[0] for r in client.requests] == ["BatchGetItem", "TransactWriteItems"]


def test_hidden_caller_has_no_callers_row_and_a_plain_update():
    client = FakeClient(number_row={k: {"S": v} for k, v in ROW.items()})
    s = DynamoStorage(client, TABLES)
    _, _, callers = s.read_routing(ROW["number"], None)
    assert "t-callers" not in client.requests[0][1]["RequestItems"]
    assert store.is_first_call(callers, "acme") is None
    fields = flow.origin_fields(
        {**PARAMS, "From": "anonymous"}, ROW, None, start_epoch=2000, created_by="voice"
    )
    s.write_origin(SID, fields, caller=None, first_time=None, now_iso="x")
    assert [r[0] for r in client.requests] == ["BatchGetItem", "UpdateItem"]
    assert "first_time" not in client.items[SID]


# ------------------------------------------------------------------ round-robin counter (issue 18)

RR = "rr#main#desk"


def test_a_repeat_callers_round_robin_bump_joins_the_call_write_in_one_request():
    # Given a repeat caller to a round-robin number
    client = FakeClient()
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    # When the call is written with the counter to bump
    store.write_origin(SID, fields, caller="+8190", first_time=False, now_iso="x", bump=RR)
    # Then it is one transaction: the call and ADD 1 on the number's counter (only if the row exists)
    assert [r[0] for r in client.requests] == ["TransactWriteItems"]
    call_update, bump = [item["Update"] for item in client.requests[0][1]["TransactItems"]]
    assert call_update["TableName"] == "t-calls"
    assert bump["TableName"] == "t-numbers" and bump["Key"] == {"number": {"S": ROW["number"]}}
    assert bump["UpdateExpression"] == "ADD #counter :one"
    assert bump["ExpressionAttributeNames"]["#counter"] == RR
    assert bump["ConditionExpression"] == "attribute_exists(#number)"


def test_a_first_time_callers_bump_is_the_third_item_of_the_same_transaction():
    client = FakeClient()
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    store.write_origin(SID, fields, caller="+819012345678", first_time=True, now_iso="x", bump=RR)
    assert [r[0] for r in client.requests] == ["TransactWriteItems"]
    tables = [item["Update"]["TableName"] for item in client.requests[0][1]["TransactItems"]]
    assert tables == ["t-calls", "t-callers", "t-numbers"]
    assert client.items[SID]["first_time"] == {"BOOL": True}


def test_a_conflict_on_the_counter_alone_writes_the_call_once_more_without_it():
    # Given two calls racing on one number: the transaction is cancelled for the counter only
    client = FakeClient(cancel_reasons=[["None", "None", "TransactionConflict"]])
    store = DynamoStorage(client, TABLES)
    fields = flow.origin_fields(PARAMS, ROW, None, start_epoch=2000, created_by="voice")
    # When the first-time call is written
    outcome = store.write_origin(SID, fields, caller="+819012345678", first_time=True, now_iso="x", bump=RR)
    # Then the call and the first-call mark are written by a second transaction without the counter
    assert outcome == "created"
    assert [len(r[1]["TransactItems"]) for r in client.requests] == [3, 2]
    assert client.items[SID]["first_time"] == {"BOOL": True}


@pytest.mark.parametrize("kind", ["lease", "shared"])
def test_the_lease_live_at_a_calls_start_comes_from_the_history_with_its_visitor(kind):
    from calltrack.call_items import to_attr

    # Given the number's history: a session (leased, or shown an exhausted pool's shared number)
    # from 10:00:00 to 10:05:00, whose visitor came from a Google ad
    item = {"number": ROW["number"], "leased_at": 1_800_000_000, "kind": kind, "account": "acme",
            "session_id": "s-1", "ended_at": 1_800_000_300,
            "attribution": json.dumps({"gclid": "G-1", "keyword": "implant"})}

    class History(FakeClient):
        def query(self, **kwargs):
            self.requests.append(("Query", kwargs))
            return {"Items": [{k: to_attr(v) for k, v in item.items()}]}

    client = History()
    storage = DynamoStorage(client, {**TABLES, "lease_history": "t-history"})
    lease = storage.lease_at(ROW["number"], 1_800_000_100)
    # Then one Query of the history finds it, and a call at 10:01:40 goes to that visitor
    assert [r[0] for r in client.requests] == ["Query"]
    attribution = attribute({**ROW, "kind": "pool"}, lease, 1_800_000_100)
    assert attribution.keyword == "implant" and attribution.basis == "lease"
    from calltrack.models.dni import SHARED_CONFIDENCE

    assert attribution.confidence == (1.0 if kind == "lease" else SHARED_CONFIDENCE)


def test_a_replayed_call_goes_to_the_leaseholder_with_the_shared_and_ambiguity_caps_the_live_row_gives():
    from calltrack.call_items import to_attr
    from calltrack.models.dni import SHARED_CONFIDENCE

    # Given the number's history, newest first: an exhausted pool's session shown it at 10:03:20,
    # and the lease from 10:00:00 of a session that took it 10 s after another session released it
    items = [
        {"number": ROW["number"], "leased_at": 1_800_000_200, "kind": "shared", "account": "acme",
         "session_id": "s-shared", "ended_at": 1_800_000_500,
         "attribution": json.dumps({"gclid": "G-SHARED"})},
        {"number": ROW["number"], "leased_at": 1_800_000_000, "kind": "lease", "account": "acme",
         "session_id": "s-1", "ended_at": 1_800_000_600, "prev_released_at": 1_799_999_990,
         "prev_session_id": "s-0", "attribution": json.dumps({"gclid": "G-1", "keyword": "implant"})},
    ]

    class History(FakeClient):
        def query(self, **kwargs):
            self.requests.append(("Query", kwargs))
            return {"Items": [{k: to_attr(v) for k, v in item.items()} for item in items][: kwargs["Limit"]]}

    client = History()
    storage = DynamoStorage(client, {**TABLES, "lease_history": "t-history"})
    # When a call at 10:05:00 is replayed from the outbox (one Query, as before)
    lease = storage.lease_at(ROW["number"], 1_800_000_300)
    attribution = attribute({**ROW, "kind": "pool"}, lease, 1_800_000_300)
    # Then it goes to the leaseholder, as the live row would say, not to the shared session; shared
    # lowers its confidence, and the previous holder is named (a late call of theirs is possible)
    assert [r[0] for r in client.requests] == ["Query"]
    assert (attribution.session_id, attribution.gclid) == ("s-1", "G-1")
    assert attribution.previous_session_id == "s-0"
    assert attribution.confidence <= SHARED_CONFIDENCE


def test_the_callers_redial_item_joins_their_row_and_a_throttled_redial_key_loses_only_the_redial():
    # Given a caller with a first call to acme and a redial item holding their last pool call
    seen = {"caller": {"S": "+819012345678"}, "first#acme": {"M": {"call_sid": {"S": "CA1"}}}}
    last = {"caller": {"S": "redial#+819012345678"},
            "last#acme": {"S": '{"number":"+815011112222","at":1}'}, "expire_at": {"N": "999"}}
    client = FakeClient(number_row={k: {"S": v} for k, v in ROW.items()}, callers_row=seen, redial_row=last)
    # When the webhook reads them
    _, _, callers = DynamoStorage(client, TABLES).read_routing(ROW["number"], "+819012345678")
    # Then the row carries the last pool call, and nothing else of the redial item
    assert callers["last#acme"] and "expire_at" not in callers
    assert store.is_first_call(callers, "acme") is False
    # And when only the redial key comes back unprocessed, first-time is still known
    unprocessed = {"t-callers": {"Keys": [{"caller": {"S": "redial#+819012345678"}}]}}
    client = FakeClient(number_row={k: {"S": v} for k, v in ROW.items()}, callers_row=seen,
                        unprocessed=unprocessed)
    _, _, callers = DynamoStorage(client, TABLES).read_routing(ROW["number"], "+819012345678")
    assert store.is_first_call(callers, "acme") is False and "last#acme" not in callers


def test_a_pool_calls_end_keeps_it_on_the_expiring_redial_item_and_marks_the_holder():
    client = FakeClient()
    client.update_item = lambda **kw: client.requests.append(("UpdateItem", kw)) or {}
    marked = DynamoStorage(client, TABLES).remember_pool_call(
        "+819012345678", "acme", "+815011112222", "s-1", "{}", called_at=1_000.0)
    redial, lease = (kw for _, kw in client.requests)
    assert redial["Key"] == {"caller": {"S": "redial#+819012345678"}}
    assert redial["ExpressionAttributeValues"][":ttl"] == {"N": str(1_000 + 7 * 86400 + 3600)}
    assert lease["TableName"] == "t-leases" and lease["ConditionExpression"] == "session_id = :sid"
    assert marked is True
