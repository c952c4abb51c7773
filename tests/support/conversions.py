"""Conversions on the running local stack: the fake ad platforms (``serve_ads``, register it as a
module fixture), an account with conversion rules and pool numbers per ad channel, a visitor's lease
carrying click ids and cookie ids, and a call to the leased number (``ConversionScenario``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from calltrack_cli.local.fake_ads import FakeAdPlatforms
from conversions import http as platform_http
from conversions.rules import waits_for_credentials
from tests.support import unique_number
from tests.support.account_secrets import set_account_secret
from tests.support.settings_env import settings_env
from tests.support.stack import apply_account, tokens
from tests.support.twilio import play_call

ORIGIN = "https://clinic.example.jp"
CUSTOMER = "1234567890"
ACTION = "987654321"
PIXEL = "1234567890"
MEASUREMENT = "G-ABC123"
CALLER = "+819012345678"


def serve_ads(local_stack: Any) -> Iterator[FakeAdPlatforms]:
    """The fake ad platforms, the stack's handlers pointed at them (``ads`` fixture)."""
    fake = FakeAdPlatforms().start()
    try:
        with settings_env(fake.env()):
            yield fake
    finally:
        fake.stop()


def rule(name: str = "phone-lead", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "when": {"min_talk_seconds": 60},
        "value": {"from": "won_value", "default": 5000},
        "currency": "JPY",
        "destinations": ["google_ads", "yahoo_ads", "meta", "ga4"],
    }
    base.update(overrides)
    return base


class ConversionScenario:
    """An account with pools for google-ads, yahoo-ads and facebook, the given rules and the
    destinations; ``credentials`` names the destinations whose secrets are set at the fakes."""

    def __init__(
        self,
        stack: Any,
        ads: FakeAdPlatforms,
        *,
        rules: list[dict[str, Any]] | None = None,
        credentials: tuple[str, ...] = ("google_ads", "meta", "ga4"),
    ) -> None:
        self.stack, self.ads = stack, ads
        self.pools = {
            "google": ("google-ads", ["gclid", "gbraid", "wbraid"]),
            "yahoo": ("yahoo-ads", ["yclid"]),
            "facebook": ("facebook", ["fbclid"]),
        }
        pools = [
            {"id": pid, "channel": channel, "match": {"click_ids": clicks}, "numbers": [unique_number()]}
            for pid, (channel, clicks) in self.pools.items()
        ]
        self.account = apply_account(
            stack,
            "conv",
            site={"origins": [ORIGIN], "numbers": ["+81312345678"]},
            pools=pools,
            conversions=rules if rules is not None else [rule()],
            destinations={
                "google_ads": {
                    "customer_id": "123-456-7890",
                    "conversion_action_id": ACTION,
                    "secret": "google-ads",
                },
                "yahoo_ads": {"account_id": "1234567"},
                "meta": {"pixel_id": PIXEL, "secret": "meta"},
                "ga4": {"measurement_id": MEASUREMENT, "secret": "ga4"},
            },
        )
        if "google_ads" in credentials:
            set_account_secret(
                stack, self.account, "google-ads", json.dumps(ads.google_client(CUSTOMER, ACTION))
            )
        if "meta" in credentials:
            set_account_secret(stack, self.account, "meta", ads.meta_pixel(PIXEL))
        if "ga4" in credentials:
            set_account_secret(stack, self.account, "ga4", ads.ga4_stream(MEASUREMENT))
        self.roles = tokens(stack, self.account, "admin", "marketer")

    def lease(self, **fields: Any) -> str:
        """A visitor's lease (dni.js's POST) with these click / cookie ids; -> the leased number."""
        body = {
            "account": self.account,
            "visitor_id": "v-" + secrets.token_hex(8),
            "session_id": "s-" + secrets.token_hex(8),
            "page_url": f"{ORIGIN}/implant",
            **fields,
        }
        headers = {
            "Origin": ORIGIN,
            "Content-Type": "text/plain",
            "X-Forwarded-For": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.2",
        }
        resp = self.stack.request("POST", "/dni/lease", data=json.dumps(body), headers=headers)
        assert resp.status_code == 200, resp.text
        number = resp.json()["number"]
        assert number, resp.text
        return str(number)

    def call(
        self, number: str, *, talk: int = 95, outcome: str = "answered", at: datetime | None = None
    ) -> str:
        return play_call(
            self.stack,
            number,
            at or datetime.now(UTC).replace(microsecond=0),
            outcome,
            talk,
            caller=CALLER,
        )

    def patch(self, call_sid: str, **changes: Any) -> None:
        resp = self.stack.request(
            "PATCH", f"/v1/calls/{call_sid}", token=self.roles["admin"], json=changes
        )
        assert resp.status_code == 200, resp.text

    def conversions_of(self, call_sid: str) -> dict[tuple[str, str], dict[str, Any]]:
        resp = self.stack.request("GET", f"/v1/calls/{call_sid}", token=self.roles["marketer"])
        assert resp.status_code == 200, resp.text
        return {(c["rule"], c["destination"]): c for c in resp.json()["conversions"]}

    def snapshot(self, call_sid: str) -> dict[str, Any]:
        """The call as stored now (what a call event carries)."""
        from calltrack.call_items import call_items

        call = call_items().get(call_sid, consistent=True)
        assert call is not None
        return call

    def redeliver(
        self, call_sid: str, kind: str = "call.completed", call: dict[str, Any] | None = None
    ) -> None:
        """Put a call event on the conversions queue again (a duplicate stream record or a redelivered
        message), as the fan-out would: with the call as it is now, or an older ``call`` image."""
        image = call if call is not None else self.snapshot(call_sid)
        event = {
            "type": kind,
            "account": self.account,
            "call_sid": call_sid,
            "version": image.get("version"),
            "changed": [],
            "call": image,
        }
        self.stack.stack.client("sqs").send_message(
            QueueUrl=self.stack.stack.queue_urls["conversions"], MessageBody=json.dumps(event, default=str)
        )


# --------------------------------------------------------------------------- pure builders

DESTINATIONS = {
    "google_ads": {
        "customer_id": "123-456-7890",
        "conversion_action_id": "987654321",
        "secret": "google-ads",
    },
    "yahoo_ads": {"account_id": "1234567"},
    "meta": {"pixel_id": "1234567890", "secret": "meta"},
    "ga4": {"measurement_id": "G-ABC123", "secret": "ga4"},
}


def config(**rule: Any) -> Any:
    """A typed account config with one rule (``phone-lead``, fixed 5000) to all four destinations."""
    from calltrack.account_config import parse_config

    base = {
        "name": "phone-lead",
        "when": {"min_talk_seconds": 60},
        "value": {"fixed": 5000},
        "destinations": ["google_ads", "yahoo_ads", "meta", "ga4"],
    }
    base.update(rule)
    return parse_config(
        {
            "account": "acme",
            "forward_to": "+81312345678",
            "conversions": [base],
            "destinations": DESTINATIONS,
        }
    )


def call(**overrides: Any) -> dict[str, Any]:
    """A call as a call event carries it: answered, 95 s, with click ids and the GA/Meta cookies."""
    base = {
        "call_sid": "CA" + "1" * 32,
        "account": "acme",
        "started_at": "2026-11-29T01:02:03Z",
        "ended_at": "2026-11-29T01:04:00Z",
        "status": "answered",
        "talk_seconds": 95,
        "first_time": True,
        "channel": "google-ads",
        "caller": "+819012345678",
        "attribution": {
            "gclid": "G1",
            "gbraid": "B1",
            "yclid": "Y1",
            "ga_client_id": "1.2",
            "fbp": "fb.1.2.3",
        },
    }
    base.update(overrides)
    return base


class InMemoryConversionStore:
    """The conversions table's semantics that delivery relies on: create only if absent, reclaim
    only a lapsed pending row (or one skipped for missing credentials), finish releases the claim."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, call_sid: str, key: str) -> dict[str, Any] | None:
        row = self.rows.get((call_sid, key))
        return dict(row) if row else None

    def create(self, account: str, planned: Any, *, status: str, reason: str | None, now_iso: str,
               claim_until: float, expire_at: int | None = None) -> bool:
        where = (planned.order_id.split(":")[0], planned.key)
        if where in self.rows:
            return False
        self.rows[where] = {"status": status, "reason": reason, "claimed_until": claim_until,
                            "destination": planned.destination, "expire_at": expire_at,
                            "value": planned.value, "call_version": planned.call_version}
        return True

    def reclaim(self, call_sid: str, key: str, *, now: float, claim_until: float, planned: Any,
                now_iso: str, any_version: bool = False) -> bool:
        row = self.rows[(call_sid, key)]
        lapsed = row["status"] == "pending" and row["claimed_until"] < now
        taken = lapsed or (row["status"] == "skipped" and waits_for_credentials(row["reason"]))
        if taken and (any_version or int(row.get("call_version") or 0) <= planned.call_version):
            row.update(status="pending", claimed_until=claim_until, value=planned.value,
                       call_version=planned.call_version)
            return True
        return False

    def finish(self, call_sid: str, key: str, *, status: str, reason: str | None, now_iso: str,
               sent_at: str | None = None, hold_until: float = 0) -> None:
        if (call_sid, key) in self.rows:  # an erased row stays erased
            self.rows[(call_sid, key)].update(status=status, reason=reason, claimed_until=hold_until)

    def revalue(self, call_sid: str, key: str, *, value: float | None, version: int, now_iso: str) -> bool:
        row = self.rows[(call_sid, key)]
        if row["status"] != "skipped" or int(row.get("call_version") or 0) >= version:
            return False
        row.update(value=value, call_version=version)
        return True


class Recorder:
    """A platform's HTTP endpoint for an adapter's ``post``, in process: answers in order, keeps
    what was sent."""

    def __init__(self, *answers: platform_http.Answer) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    def __call__(self, url: str, **kwargs: Any) -> platform_http.Answer:
        self.sent.append({"url": url, **kwargs})
        return self.answers.pop(0)

    def to(self, part: str) -> list[dict[str, Any]]:
        """What was sent to URLs containing ``part``."""
        return [s for s in self.sent if part in s["url"]]
