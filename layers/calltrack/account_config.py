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
import re
import string
from collections.abc import Mapping
from typing import Annotated, Any
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
Label = Annotated[str, BeforeValidator(_text_or_number), Field(min_length=1, max_length=128)]
Channel = Annotated[str, BeforeValidator(_slug("channel", re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")))]
PoolId = Annotated[str, BeforeValidator(_slug("pool id", re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")))]
StrOrList = Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]],
                      BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------- sections


class Recording(_Strict):
    enabled: bool = False
    announcement: str | None = Field(default=None, max_length=1000)
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    delete_from_twilio: bool = False


class StaticNumber(_Strict):
    number: Phone
    channel: Channel
    campaign: Label | None = None
    medium: Label | None = None


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
    lease_minutes: int = Field(default=30, ge=1, le=1440)
    numbers: list[Phone] = Field(min_length=1)
    overflow_number: Phone | None = None


class Site(_Strict):
    origins: list[str] = Field(default_factory=list)
    numbers: list[Phone] = Field(default_factory=list)

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for v in value:
            parsed = urlparse(v.strip())
            if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/") \
                    or parsed.query or parsed.fragment:
                raise _err("origin", f"not an origin: {v!r} (write e.g. https://www.example.jp)")
            out.append(f"{parsed.scheme}://{parsed.netloc.lower()}")
        return out


class Dni(_Strict):
    late_call_window_minutes: int = Field(default=120, ge=0, le=10080)
    cookie_days: int = Field(default=30, ge=0, le=400)
    wait_for_consent: bool = False


class Alerts(_Strict):
    answer_rate_below: float = Field(default=0.85, ge=0, le=1)
    missed_vs_baseline: float = Field(default=1.5, gt=0)
    min_missed: int = Field(default=5, ge=0)
    spike_missed_per_hour: int = Field(default=5, ge=1)


class Review(_Strict):
    lead_rate_high: float = Field(default=0.3, ge=0, le=1)
    lead_rate_low: float = Field(default=0.1, ge=0, le=1)
    sample_size: int = Field(default=5, ge=0, le=1000)
    trial_sample_calls: int = Field(default=50, ge=0, le=100000)
    # None = not used (the monthly review's defaults): a CRM score (0-100) >= qualified_score makes
    # a call a lead; quality is high only if won value per call also reaches won_value_per_call_high.
    qualified_score: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    won_value_per_call_high: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class Crm(_Strict):
    match_window_days: int = Field(default=7, ge=0, le=365)


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


def _numeric_id(value: Any, kind: str, what: str, min_digits: int) -> str:
    """A platform's numeric id, written in YAML as a number or a string -> its digits."""
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not re.fullmatch(rf"\d{{{min_digits},20}}", text):
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
    def _customer(cls, value: Any) -> Any:
        if value is None:
            return None
        digits = str(value).replace("-", "").strip()
        if not re.fullmatch(r"\d{10}", digits):
            raise _err("customer_id", f"a 10-digit Google Ads customer id, e.g. 123-456-7890 (got {value!r})")
        return digits

    _action = field_validator("conversion_action_id", mode="before")(
        lambda v: _numeric_id(v, "conversion_action_id", "the conversion action's numeric id", 1))


class YahooAdsDestination(_Strict):
    account_id: str  # 検索広告 account id (CSV download only: see docs/decisions.md)

    _account = field_validator("account_id", mode="before")(
        lambda v: _numeric_id(v, "account_id", "the numeric 検索広告 account id", 1))


class MetaDestination(_Strict):
    pixel_id: str
    secret: SecretName | None = None  # the Conversions API access token; unset: skipped
    test_event_code: str | None = Field(default=None, max_length=64)  # Events Manager "Test events"

    _pixel = field_validator("pixel_id", mode="before")(
        lambda v: _numeric_id(v, "pixel_id", "the numeric pixel (dataset) id", 5))


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
    return problems


class AccountConfig(_Strict):
    account: str
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str = DEFAULT_TIMEZONE
    language: str = "ja-JP"
    forward_to: Phone
    ring_timeout: int = Field(default=20, ge=5, le=600)
    voicemail: bool = False
    recording: Recording = Field(default_factory=Recording)
    whisper: str | None = Field(default=None, max_length=500)
    numbers: list[StaticNumber] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)
    site: Site | None = None
    dni: Dni = Field(default_factory=Dni)
    alerts: Alerts = Field(default_factory=Alerts)
    review: Review = Field(default_factory=Review)
    crm: Crm = Field(default_factory=Crm)
    conversions: list[ConversionRule] = Field(default_factory=list)
    destinations: Destinations = Field(default_factory=Destinations)

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


def is_timezone(value: str) -> bool:
    import zoneinfo

    if not value or value != value.strip() or ".." in value or value.startswith("/"):
        return False
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


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


def parse_config(data: Any) -> AccountConfig:
    """Validate a parsed YAML/JSON document; raise ConfigError naming every bad field."""
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
    return config


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
    if config.site:
        for i, number in enumerate(config.site.numbers):
            if number in seen and seen[number].startswith("pools"):
                errors.append(f"site.numbers[{i}]: {number} is a pool number; list the number the "
                              f"site shows by default")
                first_field = first_field or f"site.numbers[{i}]"
    if len(seen) > MAX_TRACKING_NUMBERS:
        errors.append(f"(config): {len(seen)} tracking numbers; at most {MAX_TRACKING_NUMBERS} per account")
    pool_ids: dict[str, int] = {}
    for i, pool in enumerate(config.pools):
        if pool.id in pool_ids:
            errors.append(f"pools[{i}].id: pool id {pool.id!r} is used twice "
                          f"(also pools[{pool_ids[pool.id]}])")
            first_field = first_field or f"pools[{i}].id"
        pool_ids.setdefault(pool.id, i)
    if config.review.lead_rate_low > config.review.lead_rate_high:
        errors.append("review.lead_rate_low: must not exceed review.lead_rate_high")
    for path, message in _check_conversions(config):
        errors.append(f"{path}: {message}")
        first_field = first_field or path
    if errors:
        raise ConfigError(errors, field=first_field or "(config)")


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
    canonical = json.dumps({"schema": SCHEMA_VERSION, "config": normalized}, sort_keys=True,
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_whisper(template: str | None, channel: str, campaign: str | None) -> str | None:
    if not template:
        return None
    return template.replace("{channel}", channel).replace("{campaign}", campaign or "")


def routing_for(normalized: Mapping[str, Any], channel: str, campaign: str | None) -> dict[str, Any]:
    """What the voice webhook needs to answer a call to one tracking number (no other read).

    ``whisper`` is already rendered for this number's channel/campaign (plain text, or None).
    """
    rec = normalized["recording"]
    return {
        "forward_to": normalized["forward_to"],
        "language": normalized["language"],
        "timezone": normalized["timezone"],
        "recording": {"enabled": rec["enabled"], "announcement": rec["announcement"]},
        "whisper": render_whisper(normalized.get("whisper"), channel, campaign),
        "ring_timeout": normalized["ring_timeout"],
        "voicemail": normalized["voicemail"],
    }


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
            "routing": routing_for(normalized, n["channel"], n["campaign"]),
        }
    for pool in normalized["pools"]:
        numbers = list(pool["numbers"]) + ([pool["overflow_number"]] if pool["overflow_number"] else [])
        for number in numbers:
            rows[number] = {
                "number": number, "account": account, "kind": "pool", "channel": pool["channel"],
                "campaign": pool["campaign"], "medium": pool["medium"], "pool": pool["id"],
                "routing": routing_for(normalized, pool["channel"], pool["campaign"]),
            }
    return rows


def stored_numbers(stored: Mapping[str, Any]) -> set[str]:
    """Every tracking number of a stored config (tolerant of older stored shapes)."""
    out = {n.get("number") for n in stored.get("numbers") or [] if isinstance(n, Mapping)}
    for pool in stored.get("pools") or []:
        out.update(pool.get("numbers") or [])
        out.add(pool.get("overflow_number"))
    return {n for n in out if isinstance(n, str) and n}
