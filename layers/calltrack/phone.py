"""Phone-number normalisation (E.164) and masking. Caller numbers never go to logs unmasked."""

from __future__ import annotations

import re

from calltrack.errors import BadRequest

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
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
    return bool(_E164.match(value or ""))


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


def region_for_timezone(tz: str) -> str:
    """A default numbering region for national-format numbers, from the account time zone."""
    return {"Asia/Tokyo": "JP", "Europe/London": "GB", "Australia/Sydney": "AU"}.get(
        tz, "US" if tz.startswith("America/") else "JP"
    )
