"""Phone-number normalisation (E.164) and masking. Caller numbers never go to logs unmasked."""

from __future__ import annotations

import functools
import re

from calltrack.errors import BadRequest

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Caller ids Twilio sends when the caller hid their number.
ANONYMOUS_CALLER_IDS = frozenset(
    {
        "anonymous",
        "restricted",
        "unknown",
        "private",
        "unavailable",
        "+266696687",
        "266696687",
        "+7378742833",
        "+2562533",
        "+86282452253",
        "+8656696",
    }
)


def is_e164(value: str) -> bool:
    return bool(_E164.fullmatch(value or ""))


def normalize(value: str, default_region: str = "JP", *, field: str = "number") -> str:
    """Return ``value`` as E.164, accepting national formats of ``default_region``.

    Raises BadRequest naming ``field`` for anything that is not a plausible phone number.
    """
    raw = (value or "").strip()
    if not raw:
        raise BadRequest(f"{field}: empty phone number", field=field)
    if len(raw) > 40:
        raise BadRequest(f"{field}: too long to be a phone number", field=field)
    import phonenumbers  # local import: only paths that normalise pay for it

    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise BadRequest(f"{field}: not a phone number ({exc})", field=field) from None
    if not phonenumbers.is_possible_number(parsed):
        raise BadRequest(f"{field}: not a possible phone number", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(value: str | None) -> str:
    """Show only the last four digits: '+81******5678'. Empty/None stays empty."""
    if not value:
        return ""
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return "*" * len(digits)
    prefix = "+" if value.startswith("+") else ""
    return prefix + "*" * (len(digits) - 4) + digits[-4:]


# National-format numbers of an account whose time zone names no country (UTC, Etc/GMT-9, a zone
# missing from tzdata) are read as Japanese: Asia/Tokyo is the default account time zone.
DEFAULT_REGION = "JP"


def region_for_timezone(tz: str) -> str:
    """The numbering region (ISO 3166 country code) for national-format numbers of an account.

    From tzdata's ``zone.tab`` (one country code per zone; backward links such as ``Japan`` or
    ``US/Eastern`` are followed through ``tzdata.zi``): Europe/Paris -> FR, Asia/Tokyo -> JP,
    America/New_York -> US. Zones of no country (UTC, Etc/*) and unknown names give
    ``DEFAULT_REGION``.
    """
    zones, links = _zone_countries()
    name = tz.strip() if isinstance(tz, str) else ""
    for _ in range(4):  # a link's target is a zone (tzdata has no chains; be safe anyway)
        if name in zones:
            return zones[name]
        if name not in links:
            break
        name = links[name]
    return DEFAULT_REGION


@functools.cache
def _zone_countries() -> tuple[dict[str, str], dict[str, str]]:
    """(zone -> country code from zone.tab, link name -> target zone from tzdata.zi)."""
    from importlib import resources

    zones: dict[str, str] = {}
    links: dict[str, str] = {}
    try:
        base = resources.files("tzdata").joinpath("zoneinfo")
        zone_tab = base.joinpath("zone.tab").read_text(encoding="utf-8")
        zi = base.joinpath("tzdata.zi").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):  # no tzdata package: every zone gets the default
        return zones, links
    for line in zone_tab.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones.setdefault(fields[2], fields[0])
    for line in zi.splitlines():
        if line.startswith("L "):
            parts = line.split()
            if len(parts) == 3:
                links[parts[2]] = parts[1]
    return zones, links
