"""Which conversions a call earns (pure): the account's rules applied to the call as it is now.

``plan(call, config, now)`` -> one ``Planned`` per (rule, destination) the call qualifies for, each
either to send (with its click id / user data) or to skip with a reason. A call qualifies for a
rule when it has ended and every condition of the rule's ``when`` holds. The order id (the
platforms' idempotency key: Google ``order_id``, Meta ``event_id``, GA4 ``transaction_id``) is
``{CallSid}:{rule}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from calltrack.account_config import AccountConfig, ConversionRule

STAGE_RANK = {"lead": 1, "opportunity": 2, "won": 3}
GOOGLE_CLICK_IDS = ("gclid", "gbraid", "wbraid")  # exactly one is sent, in this order of preference
GOOGLE_WINDOW = timedelta(days=90)  # Google Ads: clicks older than 90 days cannot be imported
META_WINDOW = timedelta(days=7)  # Meta CAPI: event_time at most 7 days in the past
GA4_WINDOW = timedelta(hours=72)  # GA4 Measurement Protocol: timestamp_micros at most 72 h back

# skip reasons
NO_CREDENTIALS = "no_credentials"
# The platform refused the credentials (revoked token, malformed secret, no permission): a skip
# like a missing secret, taken again once the secret is fixed ("credentials_refused: <why>").
CREDENTIALS_REFUSED = "credentials_refused"
CSV_ONLY = "csv_only"
NO_CLICK_ID = "no_click_id"
CLICK_TOO_OLD = "click_too_old"
EVENT_TOO_OLD = "event_too_old"
NO_USER_DATA = "no_user_data"
NO_CLIENT_ID = "no_client_id"


@dataclass(frozen=True)
class Planned:
    rule: str
    destination: str
    order_id: str
    converted_at: str  # ISO 8601 UTC (the call's start)
    value: float | None
    currency: str
    value_from_call: bool  # the value follows the call's won value (restated when it changes)
    call_version: int = 0  # the call's version this was planned from (older events never restate)
    skip: str | None = None  # a skip reason, else it is to be sent
    click_id_type: str | None = None
    click_id: str | None = None
    secret: str | None = None  # the account secret the destination's adapter needs
    extra: dict[str, Any] = field(default_factory=dict)  # fbc, fbp, ga client/session id, caller

    @property
    def key(self) -> str:
        return f"{self.rule}#{self.destination}"


def attribution_of(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call's attribution, without click ids that are not click ids (stored before the lease
    checked them): never sent to a platform nor listed in an import file."""
    from calltrack.dni_match import CLICK_IDS, click_id_or_none
    from calltrack.records import json_object

    attribution = json_object(call.get("attribution"))
    for name in CLICK_IDS:
        if attribution.get(name) is not None:
            attribution[name] = click_id_or_none(attribution[name])
    return attribution


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def qualifies(rule: ConversionRule, call: Mapping[str, Any]) -> bool:
    if not call.get("ended_at") or not call.get("started_at"):
        return False
    when = rule.when
    if int(call.get("talk_seconds") or 0) < when.min_talk_seconds:
        return False
    if when.min_talk_seconds > 0 and call.get("status") != "answered":
        return False
    if when.first_time is not None and bool(call.get("first_time")) != when.first_time:
        return False
    if (
        when.stage_at_least is not None
        and STAGE_RANK.get(str(call.get("stage") or ""), 0) < STAGE_RANK[when.stage_at_least]
    ):
        return False
    return not (when.channels and call.get("channel") not in when.channels)


def value_of(rule: ConversionRule, call: Mapping[str, Any]) -> tuple[float | None, bool]:
    """(value to send, whether it follows the call's won value)."""
    if rule.value is None:
        return None, False
    if rule.value.fixed is not None:
        return float(rule.value.fixed), False
    won = call.get("value")
    if isinstance(won, int | float) and not isinstance(won, bool):
        return float(won), True
    return (float(rule.value.default) if rule.value.default is not None else None), True


def plan(
    call: Mapping[str, Any], config: AccountConfig, now: datetime, has_secret: Any = lambda name: True
) -> list[Planned]:
    """Every (rule, destination) the call qualifies for, to send or to skip (with the reason).

    ``has_secret(name)`` says whether the account has that secret set (a destination whose secret
    is not set is CSV-only / skipped: no_credentials)."""
    out: list[Planned] = []
    attribution = attribution_of(call)
    started = parse_utc(str(call["started_at"])) if call.get("started_at") else now
    age = now - started
    for rule in config.conversions:
        if not qualifies(rule, call):
            continue
        value, from_call = value_of(rule, call)
        base = {
            "rule": rule.name,
            "order_id": f"{call['call_sid']}:{rule.name}",
            "converted_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": value,
            "currency": rule.currency,
            "value_from_call": from_call,
            "call_version": int(call.get("version") or 0),
        }
        for destination in rule.destinations:
            planned = _planned(destination, base, call, attribution, config, age, has_secret)
            if destination == "google_ads" and rule.google_ads_conversion_action_id:
                planned.extra["conversion_action_id"] = rule.google_ads_conversion_action_id
            out.append(planned)
    return out


def _planned(
    destination: str,
    base: dict[str, Any],
    call: Mapping[str, Any],
    attribution: Mapping[str, Any],
    config: AccountConfig,
    age: timedelta,
    has_secret: Any,
) -> Planned:
    dest = getattr(config.destinations, destination)
    secret = getattr(dest, "secret", None)
    if destination == "google_ads":
        kind = next((k for k in GOOGLE_CLICK_IDS if attribution.get(k)), None)
        click: dict[str, Any] = {"click_id_type": kind, "click_id": attribution.get(kind) if kind else None}
        if kind is None:
            return Planned(destination=destination, skip=NO_CLICK_ID, **base)
        if age > GOOGLE_WINDOW:
            return Planned(destination=destination, skip=CLICK_TOO_OLD, **base, **click)
        if not secret or not has_secret(secret):
            return Planned(destination=destination, skip=NO_CREDENTIALS, **base, **click)
        return Planned(destination=destination, secret=secret, **base, **click)
    if destination == "yahoo_ads":
        yclid = attribution.get("yclid")
        if not yclid:
            return Planned(destination=destination, skip=NO_CLICK_ID, **base)
        skip = CLICK_TOO_OLD if age > GOOGLE_WINDOW else CSV_ONLY
        return Planned(destination=destination, skip=skip, click_id_type="yclid", click_id=str(yclid), **base)
    if destination == "meta":
        extra = {
            "caller": call.get("caller"),
            "fbc": attribution.get("fbc") or _fbc_from_fbclid(attribution, call),
            "fbp": attribution.get("fbp"),
        }
        if not (extra["caller"] or extra["fbc"] or extra["fbp"]):
            return Planned(destination=destination, skip=NO_USER_DATA, **base)
        if age > META_WINDOW:
            return Planned(destination=destination, skip=EVENT_TOO_OLD, **base)
        if not secret or not has_secret(secret):
            return Planned(destination=destination, skip=NO_CREDENTIALS, **base)
        return Planned(destination=destination, secret=secret, extra=extra, **base)
    # ga4
    client_id = attribution.get("ga_client_id")
    if not client_id:
        return Planned(destination=destination, skip=NO_CLIENT_ID, **base)
    if age > GA4_WINDOW:
        return Planned(destination=destination, skip=EVENT_TOO_OLD, **base)
    if not secret or not has_secret(secret):
        return Planned(destination=destination, skip=NO_CREDENTIALS, **base)
    extra = {"client_id": client_id, "session_id": attribution.get("ga_session_id")}
    return Planned(destination=destination, secret=secret, extra=extra, **base)


def _fbc_from_fbclid(attribution: Mapping[str, Any], call: Mapping[str, Any]) -> str | None:
    """Meta's documented fbc format when only the fbclid is known: fb.1.{ms since epoch}.{fbclid}."""
    fbclid = attribution.get("fbclid")
    if not fbclid or not call.get("started_at"):
        return None
    millis = int(parse_utc(str(call["started_at"])).timestamp() * 1000)
    return f"fb.1.{millis}.{fbclid}"


def waits_for_credentials(reason: str | None) -> bool:
    """A skip that a (new) secret undoes: none was set, or the platform refused the one set."""
    return reason == NO_CREDENTIALS or (reason or "").startswith(CREDENTIALS_REFUSED)
