"""The CRM push over its ports: which version of a call the CRM ends with."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calltrack.account_config import HubspotPush, KintonePush
from webhooks.crm import Link, push_hubspot, push_kintone
from webhooks.outgoing import Answer


class MemoryLinks:
    """The link rows as DynamoDeliveries keeps them (claim: only a version not older than the last)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Link] = {}

    def get(self, destination: str, call_sid: str) -> Link | None:
        return self.rows.get((destination, call_sid))

    def put(self, destination: str, call_sid: str, link: Link) -> None:
        self.rows[(destination, call_sid)] = link

    def claim(self, destination: str, call_sid: str, version: int) -> bool:
        link = self.rows[(destination, call_sid)]
        if link.pushed_version is not None and link.pushed_version > version:
            return False
        self.rows[(destination, call_sid)] = Link(link.remote_id, link.scope, version)
        return True


class Crm:
    """Answers every request with an id and remembers what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def __call__(self, method: str, url: str, body: bytes | None, headers: Any) -> Answer:
        self.sent.append((method, url, json.loads(body or b"{}")))
        return Answer(200, json.dumps({"id": "101", "results": [{"id": "7"}]}).encode())


def payload(action: str, version: int, stage: str) -> dict[str, Any]:
    call = {"call_sid": "CA1", "caller": "+819012345678", "stage": stage, "status": "answered"}
    return {"action": action, "call": call, "version": version}


KINTONE = KintonePush(domain="acme.cybozu.com", app=7, token_secret="k", fields={"stage": "ステージ"})


@pytest.mark.parametrize("crm_name", ["kintone", "hubspot"])
def test_an_older_update_retried_after_a_newer_one_does_not_take_the_crm_back(crm_name: str) -> None:
    links, crm = MemoryLinks(), Crm()

    def push(p: dict[str, Any]) -> None:
        if crm_name == "kintone":
            push_kintone(p, KINTONE, "token", "https://acme.cybozu.com", crm, links)
        else:
            push_hubspot(p, HubspotPush(token_secret="h"), "token", "https://api.hubapi.com", crm, links)

    # Given a call added to the CRM (version 2), then changed to lead (3) and to won (4)
    push(payload("add", 2, ""))
    # When the update to won is delivered first, and the update to lead (retried) after it
    push(payload("update", 4, "won"))
    sent_before = len(crm.sent)
    push(payload("update", 3, "lead"))
    # Then the late, older update is not sent: the CRM keeps "won"
    assert len(crm.sent) == sent_before
    assert links.get(crm_name, "CA1").pushed_version == 4  # type: ignore[union-attr]
    # and the same version again (a retry of the newest) is still sent
    push(payload("update", 4, "won"))
    assert len(crm.sent) == sent_before + 1


def test_a_late_retry_after_the_account_moved_apps_does_not_add_an_older_stage_there() -> None:
    from calltrack.account_config import KintonePush as Push

    links, crm = MemoryLinks(), Crm()
    # Given a call pushed up to version 5 into app 7
    push_kintone(payload("add", 5, "won"), KINTONE, "token", "https://acme.cybozu.com", crm, links)
    # When the account moved to app 8 and a retry of version 3 arrives late
    moved = Push(domain="acme.cybozu.com", app=8, token_secret="k", fields={"stage": "ステージ"})
    sent = len(crm.sent)
    push_kintone(payload("update", 3, "lead"), moved, "token", "https://acme.cybozu.com", crm, links)
    # Then nothing is added to app 8 with the older stage, and the link still says version 5
    assert len(crm.sent) == sent and links.get("kintone", "CA1").pushed_version == 5  # type: ignore[union-attr]
    # and the call's next change adds it to app 8
    push_kintone(payload("update", 6, "won"), moved, "token", "https://acme.cybozu.com", crm, links)
    assert crm.sent[-1][0] == "POST" and crm.sent[-1][2]["app"] == 8


class KintoneApps:
    """kintone keeping records per app, found by the call-id field; the answer to the first add
    is lost (the record is made, the sender sees a timeout)."""

    def __init__(self) -> None:
        self.records: dict[int, dict[str, dict[str, Any]]] = {}
        self.sent: list[tuple[str, Any]] = []
        self.lose_next_add = True

    def __call__(self, method: str, url: str, body: bytes | None, headers: Any) -> Answer:
        sent = json.loads(body or b"{}")
        self.sent.append((method, sent))
        app = self.records.setdefault(int(sent["app"]), {})
        if method == "GET":
            sid = sent["query"].split('"')[1]
            found = [{"$id": {"value": i}} for i, r in app.items() if r["通話ID"]["value"] == sid]
            return Answer(200, json.dumps({"records": found[:1]}).encode())
        if method == "POST":
            record_id = str(len(app) + 1)
            app[record_id] = sent["record"]
            if self.lose_next_add:
                self.lose_next_add = False
                raise TimeoutError("the answer never came")
            return Answer(200, json.dumps({"id": record_id}).encode())
        app[str(sent["id"])] = sent["record"]  # PUT
        return Answer(200, b"{}")


def test_a_retried_add_to_the_app_the_account_moved_to_finds_its_record_instead_of_adding_twice() -> None:
    from calltrack.account_config import KintonePush as Push

    # Given a call added to app 7, and the account moved to app 8 (the call id mapped to a field)
    fields = {"call_sid": "通話ID", "stage": "ステージ"}
    links, kintone = MemoryLinks(), KintoneApps()
    kintone.lose_next_add = False
    first = Push(domain="acme.cybozu.com", app=7, token_secret="k", fields=fields)
    push_kintone(payload("add", 2, ""), first, "token", "https://acme.cybozu.com", kintone, links)
    moved = Push(domain="acme.cybozu.com", app=8, token_secret="k", fields=fields)
    # When the call's next change adds it to app 8 but the answer is lost, and the delivery retries
    kintone.lose_next_add = True
    with pytest.raises(TimeoutError):
        push_kintone(payload("update", 3, "lead"), moved, "token", "https://acme.cybozu.com", kintone, links)
    record_id = push_kintone(payload("update", 3, "lead"), moved, "token", "https://acme.cybozu.com", kintone,
                             links, retrying=True)
    # Then app 8 holds the call once, updated in place, and the link names that record
    assert list(kintone.records[8]) == [record_id]
    assert kintone.records[8][record_id]["ステージ"]["value"] == "lead"
    assert [m for m, _ in kintone.sent[-2:]] == ["GET", "PUT"]
    assert links.get("kintone", "CA1") == Link(record_id, "acme.cybozu.com/8", 3)


class HubspotWithLoggedCall:
    """HubSpot that already holds call 55 logged for CA1 (an earlier try whose answer was lost);
    the calls search answers ``search_status``."""

    def __init__(self, search_status: int = 200) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.search_status = search_status

    def __call__(self, method: str, url: str, body: bytes | None, headers: Any) -> Answer:
        sent = json.loads(body or b"{}")
        self.sent.append((method, url, sent))
        if url.endswith("/calls/search"):
            [[wanted]] = [[f["value"] for f in g["filters"] if f["propertyName"] == "hs_call_external_id"]
                          for g in sent["filterGroups"]]
            results = [{"id": "55"}] if wanted == "CA1" else []
            found = {"total": len(results), "results": results}
            return Answer(self.search_status, json.dumps(found).encode())
        return Answer(200, json.dumps({"id": "101", "results": [{"id": "7"}]}).encode())


def _hubspot(send: Any, links: MemoryLinks, *, retrying: bool) -> str:
    return push_hubspot(payload("add", 2, ""), HubspotPush(token_secret="h"), "token",
                        "https://api.hubapi.com", send, links, retrying=retrying)


def test_a_retried_hubspot_log_finds_the_call_an_earlier_try_logged_instead_of_logging_it_twice() -> None:
    links, hubspot = MemoryLinks(), HubspotWithLoggedCall()
    # Given HubSpot holding the call an earlier try logged (its answer was lost)
    # When the delivery is retried
    call_id = _hubspot(hubspot, links, retrying=True)
    # Then it searched by the call's sid, updated that call, logged none, and keeps its id
    assert [(m, u.rsplit("/v3/", 1)[1]) for m, u, _ in hubspot.sent] == [
        ("POST", "objects/calls/search"), ("PATCH", "objects/calls/55")]
    assert hubspot.sent[1][2]["properties"]["hs_call_external_id"] == "CA1"
    assert call_id == "55" and links.get("hubspot", "CA1") == Link("55", None, 2)


def test_a_first_hubspot_log_does_not_search_and_carries_the_sid_as_external_id() -> None:
    links, hubspot = MemoryLinks(), HubspotWithLoggedCall()
    # When a call is logged for the first time
    _hubspot(hubspot, links, retrying=False)
    # Then no calls search is paid; the call is logged with the sid a later retry would search for
    assert not any(u.endswith("/calls/search") for _, u, _ in hubspot.sent)
    [(_, _, logged)] = [s for s in hubspot.sent if s[1].endswith("/objects/calls")]
    assert logged["properties"]["hs_call_external_id"] == "CA1"


@pytest.mark.parametrize(("status", "outcome"), [(403, "logs"), (503, "retries")])
def test_a_refused_hubspot_call_search_logs_as_before_and_a_failed_one_is_tried_again(
    status: int, outcome: str
) -> None:
    from webhooks.crm import Failed

    links, hubspot = MemoryLinks(), HubspotWithLoggedCall(search_status=status)
    # When a retry's search is refused (a token without search) or fails (HubSpot in trouble)
    if outcome == "retries":
        with pytest.raises(Failed) as failed:
            _hubspot(hubspot, links, retrying=True)
        # Then the delivery is tried again later and nothing is logged meanwhile
        assert failed.value.retry and not any(u.endswith("/objects/calls") for _, u, _ in hubspot.sent)
    else:
        # Then the call is logged as before
        assert _hubspot(hubspot, links, retrying=True) == "101"
