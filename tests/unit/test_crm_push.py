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
