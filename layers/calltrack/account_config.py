"""The account config (`calltrack apply FILE.yaml`): validation, normalisation, derived rows.

One pydantic v2 model tree with ``extra="forbid"``: every unknown key is rejected naming it, every
error names its field path (``numbers[0].number: not a phone number``). Phone numbers are accepted
in E.164 or national format (the default region comes from the account time zone) and stored as
E.164. ``normalize_config`` returns the stored shape (a plain dict with every default filled, see
the shared conventions) and ``tracking_rows`` the TrackingNumber rows derived from it.

Other contexts read an account's stored config through ``calltrack.accounts`` (the one reader).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from calltrack.call_items import DEFAULT_CALLS_DAYS
from calltrack.days import is_timezone
from calltrack.dni_match import DEFAULT_LEASE_MINUTES
from calltrack.errors import BadRequest
from calltrack.phone import region_for_timezone

# Bump when the stored shape or the derived rows change, so re-applying rewrites them.
SCHEMA_VERSION = 1
ACCOUNT_SLUG = re.compile(r"\A[a-z0-9][a-z0-9-]{1,62}\Z")  # \Z: no trailing newline
MAX_TRACKING_NUMBERS = 1000
WHISPER_FIELDS = ("channel", "campaign")
DEFAULT_TIMEZONE = "Asia/Tokyo"


class ConfigError(BadRequest):
    """The account config is invalid; ``errors`` lists every problem as 'path: message'."""

    def __init__(self, errors: list[str], *, field: str | None = None) -> None:
        super().__init__("; ".join(errors), field=field)
        self.errors = errors

    def body(self) -> dict[str, object]:
        out = super().body()
        out["errors"] = self.errors
        return out


# --------------------------------------------------------------------------- field types


def _err(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is used verbatim (no template expansion)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


def _phone(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int):
            raise _err("phone_type", f"phone numbers must be quoted strings (YAML read {value} as a number)")
        raise _err("phone_type", "not a phone number (expected a string)")
    region = (info.context or {}).get("region", "JP")
    try:
        return _normalize_phone(value, region)
    except ValueError as exc:
        raise _err("phone", str(exc)) from None


def _normalize_phone(value: str, region: str) -> str:
    import phonenumbers

    raw = value.strip()
    if not raw or len(raw) > 40:
        raise ValueError("not a phone number")
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    # "possible" (right length for the country), like calltrack.phone.normalize: the same
    # numbers are accepted here and everywhere else numbers are read.
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"not a phone number ({raw!r} has the wrong length for its country)")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _text_or_number(value: Any) -> Any:
    """Labels (campaign, medium) may be read by YAML as numbers or dates: keep them as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _slug(kind: str, pattern: re.Pattern[str]) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise _err("slug", f"{kind} must be lowercase letters, digits and '-' (got {value!r})")
        return value

    return check


Phone = Annotated[str, BeforeValidator(_phone)]
Channel = Annotated[str, BeforeValidator(_slug("channel", re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")))]


def _reading_stored(info: ValidationInfo) -> bool:
    """A stored config read back (``calltrack.accounts.typed_config``): checks that came after it
    was stored must not make it unreadable; they apply when a config is written."""
    return bool(info.context and info.context.get("stored"))


def _spoken(value: Any, info: ValidationInfo) -> Any:
    """Text Twilio reads out (<Say>): control characters other than tab and line ends make the
    TwiML not well-formed XML, and Twilio would fail every call that plays it."""
    if _reading_stored(info):
        return value
    from calltrack.twilio_edge import NOT_XML  # not XML 1.0 characters: <Say> would not be well-formed

    if isinstance(value, str) and (bad := NOT_XML.search(value)):
        raise _err("spoken_text", f"control character U+{ord(bad.group()):04X} cannot be spoken; remove it")
    return value


Spoken = BeforeValidator(_spoken)
# campaign and medium: shown in reports and spoken in a whisper ("{campaign}")
Label = Annotated[str, Spoken, BeforeValidator(_text_or_number), Field(min_length=1, max_length=128)]

PoolId = Annotated[str, BeforeValidator(_slug("pool id", re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")))]
StrOrList = Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]],
                      BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------- sections


class Recording(_Strict):
    enabled: bool = False
    announcement: Annotated[str | None, Spoken] = Field(default=None, max_length=1000)
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    delete_from_twilio: bool = False


class Retention(_Strict):
    """How long each kind of a caller's data is kept, in days (null: forever). ``calls_days`` is the
    call items' DynamoDB TTL (default ``DEFAULT_CALLS_DAYS``); recordings follow
    ``recording.retention_days`` when ``recordings_days`` is unset, then the calls; transcripts
    follow the recordings. Nothing may outlive its call (see ``effective_retention``)."""

    calls_days: int | None = Field(default=DEFAULT_CALLS_DAYS, ge=1, le=36500)
    recordings_days: int | None = Field(default=None, ge=1, le=36500)
    transcripts_days: int | None = Field(default=None, ge=1, le=36500)


class StaticNumber(_Strict):
    number: Phone
    channel: Channel
    campaign: Label | None = None
    medium: Label | None = None
    flow: str | None = None  # a key of ``flows`` (default: the account's ``flow``)


_CLICK_ID = re.compile(r"^[a-z0-9_]{1,40}$")


class Match(_Strict):
    utm_source: StrOrList | None = None
    utm_medium: StrOrList | None = None
    utm_campaign: StrOrList | None = None
    click_ids: StrOrList = Field(default_factory=list)
    referrer_domains: StrOrList = Field(default_factory=list)

    @field_validator("click_ids")
    @classmethod
    def _click_ids(cls, value: list[str]) -> list[str]:
        out = [v.strip().lower() for v in value]
        for v in out:
            if not _CLICK_ID.fullmatch(v):
                raise _err("click_id", f"not a URL parameter name: {v!r}")
        return out

    @field_validator("referrer_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        out = []
        for v in value:
            domain = v.strip().lower().rstrip(".")
            if "://" in domain or "/" in domain or not re.fullmatch(r"[a-z0-9.-]+\.[a-z0-9-]+", domain):
                raise _err("domain", f"not a domain name: {v!r} (write e.g. google.com)")
            out.append(domain)
        return out


class Pool(_Strict):
    id: PoolId
    channel: Channel
    campaign: Label | None = None
    medium: Label | None = None
    match: Match = Field(default_factory=Match)
    lease_minutes: int = Field(default=DEFAULT_LEASE_MINUTES, ge=1, le=1440)
    numbers: list[Phone] = Field(min_length=1)
    overflow_number: Phone | None = None
    flow: str | None = None  # a key of ``flows`` (default: the account's ``flow``)


class Site(_Strict):
    origins: list[str] = Field(default_factory=list)
    numbers: list[Phone] = Field(default_factory=list)

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if _reading_stored(info):
            return value  # written as below; one stored before these checks stays readable
        out = []
        for v in value:
            parsed = urlparse(v.strip())
            if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/") \
                    or parsed.query or parsed.fragment or "@" in parsed.netloc:
                raise _err("origin", f"not an origin: {v!r} (write e.g. https://www.example.jp)")
            out.append(_browser_origin(parsed, v))
        return out


def _browser_origin(parsed: Any, written: str) -> str:
    """The origin as a browser sends it (the ``Origin`` header dni.js's requests carry): the host
    in ASCII (例え.jp -> xn--r8jz45g.jp), no default port (:443 for https, :80 for http)."""
    scheme = parsed.scheme
    try:
        port = parsed.port
        host = str(parsed.hostname).encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
        raise _err("origin", f"not an origin: {written!r} (write e.g. https://www.example.jp)") from None
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class Dni(_Strict):
    late_call_window_minutes: int = Field(default=120, ge=0, le=10080)
    cookie_days: int = Field(default=30, ge=0, le=400)
    wait_for_consent: bool = False
    # How many numbers of one pool one client address (an IPv4 address, an IPv6 /64) may hold at
    # once; None: a quarter of the pool's numbers, rounded up, at most 10 (dni_lease.leasing).
    max_numbers_per_address: int | None = Field(default=None, ge=1, le=MAX_TRACKING_NUMBERS)


class Alerts(_Strict):
    answer_rate_below: float = Field(default=0.85, ge=0, le=1)
    missed_vs_baseline: float = Field(default=1.5, gt=0)
    min_missed: int = Field(default=5, ge=0)
    spike_missed_per_hour: int = Field(default=5, ge=1)
    callback_within_minutes: int = Field(default=60, ge=1, le=10080)

    @field_validator("missed_vs_baseline")
    @classmethod
    def _finite(cls, value: float, info: ValidationInfo) -> float:
        """Infinity would be answered as JSON a browser cannot parse; one stored before this check
        reads as the default."""
        if math.isfinite(value):
            return value
        if _reading_stored(info):
            return 1.5
        raise _err("finite_number", "must be a finite number")


class Review(_Strict):
    lead_rate_high: float = Field(default=0.3, ge=0, le=1)
    lead_rate_low: float = Field(default=0.1, ge=0, le=1)
    sample_size: int = Field(default=5, ge=0, le=1000)
    trial_sample_calls: int = Field(default=50, ge=0, le=100000)
    # None = not used (the monthly review's defaults): a CRM score (0-100) >= qualified_score makes
    # a call a lead; quality is high only if won value per call also reaches won_value_per_call_high.
    qualified_score: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    won_value_per_call_high: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # The pass line (合格ライン) of a campaign's trial: the mean score (0-100) of its first
    # trial_sample_calls answered calls (calltrack.trials).
    pass_score: float = Field(default=70, ge=0, le=100, allow_inf_nan=False)


class Transcription(_Strict):
    """Amazon Transcribe after a recording is stored (opt-in; priced per minute, see the README)."""

    enabled: bool = False
    min_talk_seconds: int = Field(default=20, ge=0, le=86400)


RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
Phrase = Annotated[str, BeforeValidator(_text_or_number), Field(min_length=1, max_length=100)]
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class RuleWhen(_Strict):
    """What a call must show for a rule to hit (all given conditions; none given: every completed call)."""

    phrases_any: list[Phrase] = Field(default_factory=list, max_length=50)
    speaker: str = Field(default="any", pattern="^(caller|staff|any)$")
    min_talk_seconds: int | None = Field(default=None, ge=0, le=86400)
    channels: list[Channel] = Field(default_factory=list, max_length=50)


class RuleThen(_Strict):
    """What a hit does to the call, once: tags added, stage raised (never lowered), score added (0-100)."""

    tags_add: list[Tag] = Field(default_factory=list, max_length=20)
    stage: str | None = Field(default=None, pattern="^(lead|opportunity|won|lost)$")
    score_add: int = Field(default=0, ge=-100, le=100)


class CallRule(_Strict):
    name: str
    when: RuleWhen = Field(default_factory=RuleWhen)
    then: RuleThen

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RULE_NAME.fullmatch(value):
            raise _err("slug", f"rule names are lowercase letters, digits, '_' and '-' (got {value!r})")
        return value


class Crm(_Strict):
    match_window_days: int = Field(default=7, ge=0, le=365)


# --------------------------------------------------------------------------- call flows (issue 18)
# Hours, holidays, menus and ring groups (compiled for the webhook by ``calltrack.call_flows``).

_TIME_SPAN = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
_DAY_KEY = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$")
TargetName = Annotated[str, BeforeValidator(_slug("target name", re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")))]
FlowName = Annotated[str, BeforeValidator(_slug("flow name", re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")))]
# the key pressed; YAML reads an unquoted 1 as a number
MenuKey = Annotated[str, BeforeValidator(_text_or_number), Field(pattern=r"^[0-9*#]$")]
AgentName = Annotated[str, BeforeValidator(_slug("agent", re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")))]


def _days(key: str) -> list[str]:
    from calltrack.call_flows import DAYS

    first, _, last = key.partition("-")
    a, b = DAYS.index(first), DAYS.index(last or first)
    if b < a:
        raise _err("hours", f"{key!r}: the first day must come before the last (e.g. mon-fri)")
    return list(DAYS[a: b + 1])


def _spans(key: str, value: Any) -> list[list[str]]:
    if value in (None, "closed"):
        return []
    if not isinstance(value, str):
        raise _err("hours", f"{key}: write opening hours as \"09:00-18:00\" (or \"09:00-12:00,13:00-18:00\")")
    spans = []
    for part in value.split(","):
        part = part.strip()
        if not _TIME_SPAN.fullmatch(part):
            raise _err("hours", f"{key}: {part!r} is not a time span like 09:00-18:00")
        start, end = part.split("-")
        if start >= end:
            raise _err("hours", f"{key}: {part!r} ends before it starts")
        spans.append([start, end])
    return spans


def _date_text(value: Any) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    try:
        date.fromisoformat(text)
    except ValueError:
        raise _err("date", f"not a date: {text!r} (write YYYY-MM-DD)") from None
    return date.fromisoformat(text).isoformat()  # 20261231 and 2027-W01-5 too: as branch() compares


def _hours(value: Any, info: ValidationInfo) -> Any:
    """``{mon-fri: "09:00-18:00", sat: "09:00-13:00", holidays: jp, closed: [dates]}`` -> the stored
    shape ``{"week": {"mon": [["09:00", "18:00"]], ...}, "holidays": "jp", "closed": [...]}``."""
    if not isinstance(value, Mapping):
        raise _err("hours", "hours must be a mapping of days to opening hours")
    if set(value) >= {"week"} and isinstance(value.get("week"), Mapping):
        # the stored shape: as it was stored when read back, else (sent to the API) checked the same
        return value if _reading_stored(info) else _stored_hours(value)
    week: dict[str, list[list[str]]] = {}
    holidays: str | None = None
    closed: list[str] = []
    for key, spans in value.items():
        key = str(key).strip().lower()
        if key == "holidays":
            if spans in (None, False, "none", "open"):
                continue
            holidays = str(spans).strip().lower()
        elif key == "closed":
            items = spans if isinstance(spans, list) else [spans]
            for item in items:
                text = item if not isinstance(item, str) else item.strip()
                if isinstance(text, str) and ".." in text:
                    lo, hi = (date.fromisoformat(_date_text(x)) for x in text.split("..", 1))
                    if hi < lo or (hi - lo).days > 366:
                        raise _err("date", f"closed: {text!r} is not a range of at most a year")
                    closed.extend((lo + timedelta(days=i)).isoformat() for i in range((hi - lo).days + 1))
                else:
                    closed.append(_date_text(text))
        elif _DAY_KEY.fullmatch(key):
            for day in _days(key):
                if day in week:
                    raise _err("hours", f"{key}: {day} is given twice")
                week[day] = _spans(key, spans)
        else:
            raise _err("hours", f"unknown key {key!r} (days such as mon-fri or sat, holidays, closed)")
    stored = {"holidays": _holidays(holidays), "closed": _closed(closed)}
    return {"week": _open_some_day(week), **stored}


def _open_some_day(week: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
    """Hours that open on no day would send every call of the flow to its after-hours branch."""
    if not any(week.values()):
        raise _err("hours", "no day has opening hours, so every call would be after hours: give the "
                            "days the business is open (e.g. mon-fri: \"09:00-18:00\"); days left out "
                            "are closed")
    return week


# Closed dates are copied into the account item and every number row: about three years of them
# per flow (the config's total size is checked on apply: a DynamoDB item holds at most 400 KB).
MAX_CLOSED_DATES = 1100


def _closed(dates: list[str]) -> list[str]:
    unique = sorted(set(dates))
    if len(unique) > MAX_CLOSED_DATES:
        raise _err("date", f"closed: {len(unique)} dates, at most {MAX_CLOSED_DATES}; drop past years")
    return unique


def _holidays(country: str | None) -> str | None:
    if country is None:
        return None
    from calltrack.call_flows import holiday_dates

    try:  # any one year tells whether the library knows the country
        holiday_dates(country, 2026, 1)
    except (NotImplementedError, KeyError, ValueError):
        raise _err("holidays", f"holidays: no public holidays known for {country!r} "
                               f"(write a country code such as jp)") from None
    return country


def _stored_hours(value: Mapping[str, Any]) -> dict[str, Any]:
    """The stored shape, with the checks the written shape gets (it can arrive through the API)."""
    from calltrack.call_flows import DAYS

    unknown = set(value) - {"week", "holidays", "closed"}
    if unknown:
        raise _err("hours", f"unknown key {sorted(unknown)[0]!r} next to week (holidays, closed)")
    week: dict[str, list[list[str]]] = {}
    for day, spans in dict(value["week"]).items():
        if day not in DAYS:
            raise _err("hours", f"week: {day!r} is not a day (mon ... sun)")
        if not isinstance(spans, list):
            raise _err("hours", f"week.{day}: a list of [start, end] times")
        week[day] = []
        for span in spans:
            pair = isinstance(span, list) and len(span) == 2 and all(isinstance(t, str) for t in span)
            if not pair or not _TIME_SPAN.fullmatch("-".join(span)) or span[0] >= span[1]:
                raise _err("hours", f"week.{day}: {span!r} is not a time span like [\"09:00\", \"18:00\"]")
            week[day].append([span[0], span[1]])
    holidays = value.get("holidays")
    if holidays is not None and not isinstance(holidays, str):
        raise _err("holidays", "holidays: a country code such as jp")
    closed = value.get("closed") or []
    if not isinstance(closed, list):
        raise _err("date", "closed: a list of dates")
    stored = {"holidays": _holidays(holidays), "closed": _closed([_date_text(d) for d in closed])}
    return {"week": _open_some_day(week), **stored}


class Hours(_Strict):
    week: dict[str, list[list[str]]] = Field(default_factory=dict)
    holidays: str | None = None
    closed: list[str] = Field(default_factory=list)


class RingMember(_Strict):
    agent: AgentName
    number: Phone


class RingGroup(_Strict):
    strategy: Literal["simultaneous", "round_robin", "sequential"] = "simultaneous"
    ring_seconds: int = Field(default=20, ge=5, le=120)
    # Twilio dials at most ten <Number>s at once
    members: list[RingMember] = Field(min_length=1, max_length=10)

    @field_validator("members")
    @classmethod
    def _unique(cls, value: list[RingMember]) -> list[RingMember]:
        agents = [m.agent for m in value]
        if len(set(agents)) != len(agents):
            raise _err("agent", "each agent may appear once in a ring group")
        return value


class Target(_Strict):
    forward: Phone | None = None
    ring_group: RingGroup | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.ring_group is None) == (self.forward is None):
            raise _err("target", "a target is either forward: NUMBER or ring_group: {...}")
        return self


class Menu(_Strict):
    prompt: Annotated[str, Spoken] = Field(min_length=1, max_length=1000)
    options: dict[MenuKey, TargetName] = Field(min_length=1)
    timeout_to: TargetName | None = None
    timeout_seconds: int = Field(default=5, ge=1, le=30)


class AfterHours(_Strict):
    voicemail: bool = False
    message: Annotated[str | None, Spoken] = Field(default=None, max_length=1000)
    target: TargetName | None = None


class Flow(_Strict):
    hours: Annotated[Hours, BeforeValidator(_hours)] | None = None
    menu: Menu | None = None
    targets: dict[TargetName, Target] = Field(min_length=1)
    after_hours: AfterHours = Field(default_factory=AfterHours)


def _check_flows(config: AccountConfig) -> list[tuple[str, str]]:
    """(field path, message) for every flow reference that names nothing."""
    errors: list[tuple[str, str]] = []
    for name, flow in config.flows.items():
        refs = []
        if flow.menu:
            refs += [(f"flows.{name}.menu.options.{k}", v) for k, v in flow.menu.options.items()]
            if flow.menu.timeout_to:
                refs.append((f"flows.{name}.menu.timeout_to", flow.menu.timeout_to))
        if flow.after_hours.target:
            refs.append((f"flows.{name}.after_hours.target", flow.after_hours.target))
        errors += [(path, f"no target {t!r} in flows.{name}.targets")
                   for path, t in refs if t not in flow.targets]
    uses = [("flow", config.flow)] + [(f"numbers[{i}].flow", n.flow) for i, n in enumerate(config.numbers)]
    uses += [(f"pools[{i}].flow", p.flow) for i, p in enumerate(config.pools)]
    errors += [(path, f"no flow {f!r} in flows") for path, f in uses if f and f not in config.flows]
    return errors

# --------------------------------------------------------------------------- conversions (issue 16)

STAGE_ORDER = ("lead", "opportunity", "won")  # stage_at_least: lead < opportunity < won ("lost" never)
CONVERSION_DESTINATIONS = ("google_ads", "yahoo_ads", "meta", "ga4")
SecretName = Annotated[str, BeforeValidator(_slug("secret name", re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")))]


class ConversionWhen(_Strict):
    """What makes a completed call count (every condition given must hold)."""

    min_talk_seconds: int = Field(default=0, ge=0, le=86400)
    first_time: bool | None = None  # true: only first-time callers; false: only repeat callers
    stage_at_least: str | None = None
    channels: list[Channel] = Field(default_factory=list)  # empty: any channel

    @field_validator("stage_at_least")
    @classmethod
    def _stage(cls, value: str | None) -> str | None:
        if value is not None and value not in STAGE_ORDER:
            raise _err("stage", f"one of {', '.join(STAGE_ORDER)} (got {value!r})")
        return value


class ConversionValue(_Strict):
    """``{fixed: 5000}``, or ``{from: won_value}`` (the call's value; ``default`` until it has one)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)
    fixed: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    from_: str | None = Field(default=None, alias="from")
    default: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str | None) -> str | None:
        if value is not None and value != "won_value":
            raise _err("value_from", f"the only source is won_value (got {value!r})")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ConversionValue:
        if (self.fixed is None) == (self.from_ is None):
            raise _err("value", "give exactly one of fixed or from")
        return self


class ConversionRule(_Strict):
    name: str = Field(min_length=1, max_length=100)  # the conversion action's name in the platform
    when: ConversionWhen = Field(default_factory=ConversionWhen)
    value: ConversionValue | None = None
    currency: str = "JPY"
    destinations: list[str] = Field(min_length=1)
    # The Google Ads conversion action of this rule (default: destinations.google_ads'); two rules
    # may not send to one action: Google keeps one conversion per click and action
    google_ads_conversion_action_id: str | None = None

    _google_action = field_validator("google_ads_conversion_action_id", mode="before")(
        lambda v, info: None if v is None else _numeric_id(
            v, "conversion_action_id", "the conversion action's numeric id", 1, info))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value) or "#" in value:
            raise _err("rule_name", "control characters and '#' are not allowed in a rule name")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise _err("currency", f"an ISO 4217 code such as JPY (got {value!r})")
        return value

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, value: list[str]) -> list[str]:
        for v in value:
            if v not in CONVERSION_DESTINATIONS:
                known = ", ".join(CONVERSION_DESTINATIONS)
                raise _err("destination", f"unknown destination {v!r} (one of {known})")
        if len(set(value)) != len(value):
            raise _err("destination", "a destination is listed twice")
        return value


def _stored_digits(value: Any, info: ValidationInfo) -> Any:
    """A stored config's id read back: full-width digits (accepted before ids had to be ASCII,
    2026-12-03) as ASCII, so the config stays readable and its ids usable; written, they are refused."""
    if _reading_stored(info) and isinstance(value, str):
        import unicodedata

        return unicodedata.normalize("NFKC", value)
    return value


def _numeric_id(value: Any, kind: str, what: str, min_digits: int, info: ValidationInfo) -> str:
    """A platform's numeric id, written in YAML as a number or a string -> its digits."""
    value = _stored_digits(value, info)
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not re.fullmatch(rf"[0-9]{{{min_digits},20}}", text):  # [0-9]: \d takes ０-９ too
        raise _err(kind, f"{what} (got {value!r})")
    return text


class GoogleAdsDestination(_Strict):
    customer_id: str  # "123-456-7890" or "1234567890"; stored as 10 digits
    conversion_action_id: str
    login_customer_id: str | None = None  # a manager account's id, when access goes through one
    # JSON {developer_token, client_id, client_secret, refresh_token}; unset: CSV only
    secret: SecretName | None = None

    @field_validator("customer_id", "login_customer_id", mode="before")
    @classmethod
    def _customer(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        digits = str(_stored_digits(value, info)).replace("-", "").strip()
        if not re.fullmatch(r"[0-9]{10}", digits):
            raise _err("customer_id", f"a 10-digit Google Ads customer id, e.g. 123-456-7890 (got {value!r})")
        return digits

    _action = field_validator("conversion_action_id", mode="before")(
        lambda v, info: _numeric_id(v, "conversion_action_id", "the conversion action's numeric id", 1, info))


class YahooAdsDestination(_Strict):
    account_id: str  # 検索広告 account id (CSV download only: see docs/decisions.md)

    _account = field_validator("account_id", mode="before")(
        lambda v, info: _numeric_id(v, "account_id", "the numeric 検索広告 account id", 1, info))


class MetaDestination(_Strict):
    pixel_id: str
    secret: SecretName | None = None  # the Conversions API access token; unset: skipped
    test_event_code: str | None = Field(default=None, max_length=64)  # Events Manager "Test events"

    _pixel = field_validator("pixel_id", mode="before")(
        lambda v, info: _numeric_id(v, "pixel_id", "the numeric pixel (dataset) id", 5, info))


class Ga4Destination(_Strict):
    measurement_id: str
    secret: SecretName | None = None  # the Measurement Protocol API secret; unset: skipped

    @field_validator("measurement_id")
    @classmethod
    def _measurement(cls, value: str) -> str:
        if not re.fullmatch(r"G-[A-Z0-9]{4,16}", value):
            raise _err("measurement_id", f"a GA4 measurement id such as G-ABC123 (got {value!r})")
        return value


class Destinations(_Strict):
    google_ads: GoogleAdsDestination | None = None
    yahoo_ads: YahooAdsDestination | None = None
    meta: MetaDestination | None = None
    ga4: Ga4Destination | None = None


def _check_conversions(config: AccountConfig) -> list[tuple[str, str]]:
    """(field, message) for rules naming an unconfigured destination or a name used twice."""
    problems: list[tuple[str, str]] = []
    names: dict[str, int] = {}
    for i, rule in enumerate(config.conversions):
        if rule.name in names:
            problems.append((f"conversions[{i}].name",
                             f"rule name {rule.name!r} is used twice (also conversions[{names[rule.name]}])"))
        names.setdefault(rule.name, i)
        for j, dest in enumerate(rule.destinations):
            if getattr(config.destinations, dest) is None:
                problems.append((f"conversions[{i}].destinations[{j}]",
                                 f"{dest} is not configured under destinations"))
    google = config.destinations.google_ads
    actions: dict[str, int] = {}
    for i, rule in enumerate(config.conversions):
        if google is None or "google_ads" not in rule.destinations:
            continue
        action = rule.google_ads_conversion_action_id or google.conversion_action_id
        if action in actions:
            problems.append((f"conversions[{i}].google_ads_conversion_action_id",
                             f"conversions[{actions[action]}] already sends to Google Ads action {action}; "
                             f"give each rule its own google_ads_conversion_action_id (Google keeps one "
                             f"conversion per click and action)"))
        actions.setdefault(action, i)
    return problems


# --------------------------------------------------------------------------- data out (issue 17)

WEBHOOK_EVENTS = ("call.started", "call.completed", "call.updated", "recording.ready",
                  "alert.weekly", "alert.spike", "review.monthly")
MAX_WEBHOOKS = 20
# What a CRM field mapping may name: the call's public fields (call_records.calls.call_to_json).
CRM_CALL_FIELDS = ("call_sid", "tracking_number", "caller", "started_at", "ended_at", "status",
                   "ring_seconds", "talk_seconds", "first_time", "channel", "campaign", "medium",
                   "keyword", "gclid", "landing_page", "referrer", "stage", "value", "agent",
                   "score", "tags")
FieldCode = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\"'{}\\]+$")]
DestinationId = Annotated[str, BeforeValidator(_slug("id", re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")))]


def _http_url(value: Any) -> Any:
    """An http(s) URL with a host (https and public addresses are checked by ``_check_destinations``
    at apply time and again at send time: calltrack.outbound)."""
    if not isinstance(value, str):
        raise _err("url", "expected a URL string")
    parsed = urlparse(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _err("url", f"not an http(s) URL: {value[:100]!r}")
    if parsed.username or parsed.password:
        raise _err("url", "credentials in the URL are not allowed; use secret")
    return value.strip()


HttpUrl = Annotated[str, BeforeValidator(_http_url), Field(max_length=2048)]


class Webhook(_Strict):
    """An outbound webhook: signed POSTs of the events it names (webhooks context)."""

    id: DestinationId
    url: HttpUrl
    events: list[Literal[WEBHOOK_EVENTS]] = Field(min_length=1)  # type: ignore[valid-type]
    secret: SecretName  # `calltrack secret set --account A NAME`: the HMAC key
    include_caller: bool = False  # the caller's number is sent only when true


class KintonePush(_Strict):
    """Add a kintone record per completed call, update it when the call changes."""

    domain: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,200}$")]  # acme.cybozu.com
    app: int = Field(ge=1)
    token_secret: SecretName  # the app's API token (X-Cybozu-API-Token)
    # calltrack field -> the app's field code
    fields: dict[str, FieldCode] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name not in CRM_CALL_FIELDS:
                raise _err("crm_field", f"unknown call field {name!r} (one of {', '.join(CRM_CALL_FIELDS)})")
        return value


class HubspotPush(_Strict):
    """Find or create the caller's HubSpot contact and log the call on it (CRM v3)."""

    token_secret: SecretName  # a private app's access token (Bearer)


class CrmPush(_Strict):
    kintone: KintonePush | None = None
    hubspot: HubspotPush | None = None


class AccountConfig(_Strict):
    account: str
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str = DEFAULT_TIMEZONE
    language: str = "ja-JP"
    forward_to: Phone
    ring_timeout: int = Field(default=20, ge=5, le=600)
    voicemail: bool = False
    recording: Recording = Field(default_factory=Recording)
    retention: Retention = Field(default_factory=Retention)
    whisper: Annotated[str | None, Spoken] = Field(default=None, max_length=500)
    numbers: list[StaticNumber] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)
    site: Site | None = None
    dni: Dni = Field(default_factory=Dni)
    alerts: Alerts = Field(default_factory=Alerts)
    review: Review = Field(default_factory=Review)
    crm: Crm = Field(default_factory=Crm)
    transcription: Transcription = Field(default_factory=Transcription)
    call_rules: list[CallRule] = Field(default_factory=list, max_length=100)
    # call flows and test calls (issue 18)
    flows: dict[FlowName, Flow] = Field(default_factory=dict)
    flow: str | None = None  # the account's default flow (numbers and pools may name their own)
    test_callers: list[Phone] = Field(default_factory=list, max_length=50)
    conversions: list[ConversionRule] = Field(default_factory=list)
    destinations: Destinations = Field(default_factory=Destinations)
    webhooks: list[Webhook] = Field(default_factory=list, max_length=MAX_WEBHOOKS)
    crm_push: CrmPush = Field(default_factory=CrmPush)

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not ACCOUNT_SLUG.fullmatch(value):
            raise _err("slug", f"must be a slug: 2-63 lowercase letters, digits and '-' (got {value!r})")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not is_timezone(value):
            raise _err("timezone", f"not a time zone name: {value!r} (e.g. Asia/Tokyo)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _language_of_the_zone(cls, data: Any) -> Any:
        """Without ``language``, callers hear Japanese in a Japanese zone, else English (a New York
        account's callers heard 「ただいま営業時間外です」)."""
        if isinstance(data, Mapping) and data.get("language") is None:
            from calltrack.phone import region_for_timezone

            zone = data.get("timezone")
            region = region_for_timezone(zone if isinstance(zone, str) else DEFAULT_TIMEZONE)
            return {**data, "language": "ja-JP" if region == "JP" else "en-US"}
        return data

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", value):
            raise _err("language", f"not a language tag: {value!r} (e.g. ja-JP)")
        return value

    @field_validator("whisper")
    @classmethod
    def _whisper(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError:
            raise _err("whisper", "unbalanced braces in the whisper template") from None
        for f in fields:
            if f not in WHISPER_FIELDS:
                raise _err("whisper", f"unknown placeholder {{{f}}} (use {{channel}} or {{campaign}})")
        return value


# --------------------------------------------------------------------------- parsing


def field_path(loc: tuple[int | str, ...]) -> str:
    """('numbers', 0, 'number') -> 'numbers[0].number'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(config)"


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    return str(err.get("msg", "invalid"))


def parse_config(data: Any, *, local_mode: bool | None = None) -> AccountConfig:
    """Validate a parsed YAML/JSON document; raise ConfigError naming every bad field.

    ``local_mode`` (default: the settings') allows http destinations on 127.0.0.1."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"(config): expected a mapping of keys to values, got {type(data).__name__}"])
    tz = data.get("timezone", DEFAULT_TIMEZONE)
    region = region_for_timezone(tz) if isinstance(tz, str) else "JP"
    try:
        config = AccountConfig.model_validate(dict(data), context={"region": region})
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            path = field_path(tuple(err["loc"]))
            errors.append(f"{path}: {_message(err)}")
        first = exc.errors()[0]
        raise ConfigError(errors, field=field_path(tuple(first["loc"]))) from None
    _check_numbers(config)
    _check_destinations(config, _local_mode() if local_mode is None else local_mode)
    return config


def _local_mode() -> bool:
    from calltrack.settings import get_settings

    return get_settings().local_mode


def _check_destinations(config: AccountConfig, local_mode: bool) -> None:
    """Apply-time SSRF checks (calltrack.outbound): https outside local mode, no literal internal
    address; webhook ids unique. Send time checks the resolved address again."""
    from calltrack.outbound import RefusedDestination, check_url

    errors: list[str] = []
    first: str | None = None
    urls = [(f"webhooks[{i}].url", hook.url) for i, hook in enumerate(config.webhooks)]
    if config.crm_push.kintone:
        urls.append(("crm_push.kintone.domain", f"https://{config.crm_push.kintone.domain}/"))
    for path, url in urls:
        try:
            check_url(url, local_mode=local_mode)
        except RefusedDestination as exc:
            errors.append(f"{path}: {exc}")
            first = first or path
    twice = _ids_used_twice("webhooks", "webhook", [hook.id for hook in config.webhooks])
    errors += twice
    first = first or (twice[0].split(":", 1)[0] if twice else None)
    if errors:
        raise ConfigError(errors, field=first)


def _ids_used_twice(section: str, kind: str, ids: list[str]) -> list[str]:
    """'pools[2].id: pool id 'web' is used twice (also pools[0])' for each repeated id."""
    seen: dict[str, int] = {}
    errors = []
    for i, value in enumerate(ids):
        if value in seen:
            errors.append(f"{section}[{i}].id: {kind} id {value!r} is used twice "
                          f"(also {section}[{seen[value]}])")
        seen.setdefault(value, i)
    return errors


def dialled_paths(config: AccountConfig) -> list[tuple[str, str]]:
    """(field path, number) of every number a call of the account can ring: ``forward_to`` and the
    flows' forwards and ring-group members."""
    return [("forward_to", config.forward_to), *_forward_paths(config)]


def _forward_paths(config: AccountConfig) -> list[tuple[str, str]]:
    """(field path, number) of every number a call flow rings."""
    out: list[tuple[str, str]] = []
    for name, flow in config.flows.items():
        for target_name, target in flow.targets.items():
            path = f"flows.{name}.targets.{target_name}"
            if target.forward:
                out.append((f"{path}.forward", target.forward))
            for i, member in enumerate(target.ring_group.members if target.ring_group else []):
                out.append((f"{path}.ring_group.members[{i}].number", member.number))
    return out


def _check_numbers(config: AccountConfig) -> None:
    seen: dict[str, str] = {}
    errors: list[str] = []
    first_field: str | None = None
    for path, number in number_paths(config):
        if number in seen:
            errors.append(f"{path}: {number} is listed twice (also at {seen[number]})")
            first_field = first_field or path
        else:
            seen[number] = path
    if config.forward_to in seen:
        errors.append(f"forward_to: {config.forward_to} is also a tracking number "
                      f"({seen[config.forward_to]}); calls would loop")
        first_field = first_field or "forward_to"
    for path, number in _forward_paths(config):
        if number in seen:
            errors.append(f"{path}: {number} is also a tracking number ({seen[number]}); calls would loop")
            first_field = first_field or path
    if config.site:
        for i, number in enumerate(config.site.numbers):
            if number in seen and seen[number].startswith("pools"):
                errors.append(f"site.numbers[{i}]: {number} is a pool number; list the number the "
                              f"site shows by default")
                first_field = first_field or f"site.numbers[{i}]"
    if len(seen) > MAX_TRACKING_NUMBERS:
        errors.append(f"(config): {len(seen)} tracking numbers; at most {MAX_TRACKING_NUMBERS} per account")
    twice = _ids_used_twice("pools", "pool", [pool.id for pool in config.pools])
    errors += twice
    first_field = first_field or (twice[0].split(":", 1)[0] if twice else None)
    rule_names: dict[str, int] = {}
    for i, rule in enumerate(config.call_rules):
        if rule.name in rule_names:
            errors.append(f"call_rules[{i}].name: rule name {rule.name!r} is used twice "
                          f"(also call_rules[{rule_names[rule.name]}])")
            first_field = first_field or f"call_rules[{i}].name"
        rule_names.setdefault(rule.name, i)
        if rule.when.speaker != "any" and not rule.when.phrases_any:
            errors.append(f"call_rules[{i}].when.speaker: only means something with phrases_any")
            first_field = first_field or f"call_rules[{i}].when.speaker"
    if config.transcription.enabled and not re.fullmatch(r"[a-z]{2}-[A-Z]{2}", config.language):
        errors.append(f"language: transcription needs a language with its region, e.g. ja-JP or en-US "
                      f"(got {config.language!r})")
        first_field = first_field or "language"
    if config.review.lead_rate_low > config.review.lead_rate_high:
        errors.append("review.lead_rate_low: must not exceed review.lead_rate_high")
    for path, problem in _check_retention(config):
        errors.append(f"{path}: {problem}")
        first_field = first_field or path
    for path, problem in _check_flows(config):
        errors.append(f"{path}: {problem}")
        first_field = first_field or path
    for path, message in _check_conversions(config):
        errors.append(f"{path}: {message}")
        first_field = first_field or path
    if errors:
        raise ConfigError(errors, field=first_field or "(config)")


@dataclass(frozen=True)
class EffectiveRetention:
    """Days each kind is kept (None: forever), after the defaults and ``recording.retention_days``."""

    calls: int | None
    recordings: int | None
    transcripts: int | None


def effective_retention(config: AccountConfig) -> EffectiveRetention:
    r = config.retention
    calls = r.calls_days
    recordings = r.recordings_days or config.recording.retention_days or calls
    transcripts = r.transcripts_days or recordings
    return EffectiveRetention(calls, recordings, transcripts)


def _check_retention(config: AccountConfig) -> list[tuple[str, str]]:
    r, out = config.retention, []
    legacy = config.recording.retention_days
    if r.recordings_days and legacy and r.recordings_days != legacy:
        out.append(("retention.recordings_days", f"{r.recordings_days} differs from recording.retention_days "
                    f"({legacy}); set one of them"))
    eff = effective_retention(config)
    if r.transcripts_days and eff.recordings is not None and r.transcripts_days > eff.recordings:
        # the transcripts context removes a call's transcript when its recording expires
        out.append(("retention.transcripts_days", f"{r.transcripts_days} days outlive the recordings "
                    f"({eff.recordings}); a transcript goes with its recording"))
    if eff.calls is not None:
        for path, days in (("retention.recordings_days", eff.recordings),
                           ("retention.transcripts_days", eff.transcripts)):
            if days is not None and days > eff.calls:
                out.append((path, f"{days} days outlive the calls (retention.calls_days: {eff.calls}); "
                            "a recording or transcript must not outlive its call"))
    return out


def number_paths(config: AccountConfig) -> list[tuple[str, str]]:
    """Every tracking number of the config with the field path it came from, in file order."""
    out = [(f"numbers[{i}].number", n.number) for i, n in enumerate(config.numbers)]
    for i, pool in enumerate(config.pools):
        out.extend((f"pools[{i}].numbers[{j}]", number) for j, number in enumerate(pool.numbers))
        if pool.overflow_number:
            out.append((f"pools[{i}].overflow_number", pool.overflow_number))
    return out


# --------------------------------------------------------------------------- stored shape


def normalize_config(config: AccountConfig) -> dict[str, Any]:
    """The stored shape: plain JSON-able dict, every default filled, numbers as E.164."""
    data = config.model_dump(mode="json")
    if data["name"] is None:
        data["name"] = config.account
    return data


def config_hash(normalized: Mapping[str, Any]) -> str:
    """The config's identity for ``calltrack apply``: an unchanged hash writes nothing. A config
    whose flows expand public holidays includes the year they start from, so applying the same
    file in a new year rewrites the numbers' rows with the new years' holidays."""
    identity: dict[str, Any] = {"schema": SCHEMA_VERSION, "config": normalized}
    if any((f.get("hours") or {}).get("holidays") for f in (normalized.get("flows") or {}).values()):
        identity["holidays_from"] = _today(normalized).year
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_whisper(template: str | None, channel: str, campaign: str | None) -> str | None:
    if not template:
        return None
    return template.replace("{channel}", channel).replace("{campaign}", campaign or "")


def routing_for(
    normalized: Mapping[str, Any], channel: str, campaign: str | None, flow: str | None = None,
    *, today: date | None = None,
) -> dict[str, Any]:
    """What the voice webhook needs to answer a call to one tracking number (no other read).

    ``whisper`` is already rendered for this number's channel/campaign (plain text, or None).
    ``flow`` is the number's call flow compiled (hours with the public holidays expanded, menu,
    targets; ``calltrack.call_flows``), or absent: one forward_to. ``test_callers`` mark test calls.
    """
    rec = normalized["recording"]
    calls_days = (normalized.get("retention") or {}).get("calls_days", DEFAULT_CALLS_DAYS)
    routing = {
        "forward_to": normalized["forward_to"],
        "language": normalized["language"],
        "timezone": normalized["timezone"],
        "recording": {"enabled": rec["enabled"], "announcement": rec["announcement"]},
        "whisper": render_whisper(normalized.get("whisper"), channel, campaign),
        "ring_timeout": normalized["ring_timeout"],
        "voicemail": normalized["voicemail"],
        "calls_days": calls_days,  # the call item's TTL (calltrack.call_items.expire_at)
    }
    name = flow or normalized.get("flow")
    if name and name in (normalized.get("flows") or {}):
        from calltrack.call_flows import compile_flow

        routing["flow"] = compile_flow(name, normalized["flows"][name], today=today or _today(normalized))
    if normalized.get("test_callers"):
        routing["test_callers"] = list(normalized["test_callers"])
    return routing


def _today(normalized: Mapping[str, Any]) -> date:
    import zoneinfo

    from calltrack import clock

    return clock.now().astimezone(zoneinfo.ZoneInfo(normalized["timezone"])).date()


def tracking_rows(normalized: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """E.164 number -> TrackingNumber attributes for every static, pool and overflow number.

    Overflow numbers are ``kind: "pool"`` rows of their pool (the DNI lease row carries their
    attribution, like any pool number).
    """
    account = normalized["account"]
    rows: dict[str, dict[str, Any]] = {}
    for n in normalized["numbers"]:
        rows[n["number"]] = {
            "number": n["number"], "account": account, "kind": "static", "channel": n["channel"],
            "campaign": n["campaign"], "medium": n["medium"], "pool": None,
            "routing": routing_for(normalized, n["channel"], n["campaign"], n.get("flow")),
        }
    for pool in normalized["pools"]:
        numbers = list(pool["numbers"]) + ([pool["overflow_number"]] if pool["overflow_number"] else [])
        for number in numbers:
            rows[number] = {
                "number": number, "account": account, "kind": "pool", "channel": pool["channel"],
                "campaign": pool["campaign"], "medium": pool["medium"], "pool": pool["id"],
                "routing": routing_for(normalized, pool["channel"], pool["campaign"], pool.get("flow")),
            }
    return rows


def stored_numbers(stored: Mapping[str, Any]) -> set[str]:
    """Every tracking number of a stored config (tolerant of older stored shapes)."""
    out = {n.get("number") for n in stored.get("numbers") or [] if isinstance(n, Mapping)}
    for pool in stored.get("pools") or []:
        out.update(pool.get("numbers") or [])
        out.add(pool.get("overflow_number"))
    return {n for n in out if isinstance(n, str) and n}
