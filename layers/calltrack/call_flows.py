"""Call flows: the compiled form the voice webhook routes by, shared by admin (compiles) and the
webhook (evaluates).

``calltrack apply`` validates a flow (``calltrack.account_config.Flow``) and ``compile_flow`` turns
it into a small JSON-able dict carried in each tracking number's routing row, so the webhook needs
no other read and no holiday library: the public holidays of the flow's country are expanded into
dates here, at apply time, from the maintained ``holidays`` package (imported only by ``compile_flow``).

Compiled shape::

    {"name": "main",
     "open": {"0": [[540, 1080]], ..., "6": []} | None,   # weekday (Mon=0) -> [start, end) minutes
     "holidays": ["2026-01-01", ...], "holidays_through": "2029-12-31" | None,
     "closed": ["2026-12-29", ...],
     "menu": {"prompt", "options": {"1": "reception"}, "timeout_to", "timeout_seconds"} | None,
     "targets": {"reception": {"ring_group": {"strategy", "ring_seconds", "members": [{"agent", "number"}]}},
                 "office": {"forward": "+81312345678"}},
     "first": "reception",
     "after_hours": {"voicemail": bool, "message": str | None, "target": str | None}}

Import-light (standard library only): the webhook imports it on its cold path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Years of public holidays expanded at apply time: this year and the next ones. Applying the config
# again in a later year expands that year's (``account_config.config_hash`` counts the year).
HOLIDAY_YEARS = 3
STRATEGIES = ("simultaneous", "round_robin", "sequential")

OPEN = "open"
AFTER_HOURS = "after-hours"
HOLIDAY = "holiday"
CLOSED = "closed"


def minutes(hhmm: str) -> int:
    """'09:30' -> 570; '24:00' -> 1440 (the end of a day)."""
    hours, _, mins = hhmm.partition(":")
    return int(hours) * 60 + int(mins)


@functools.lru_cache(maxsize=32)
def holiday_dates(country: str, first_year: int, years: int = HOLIDAY_YEARS) -> tuple[str, ...]:
    """The public holidays of ``country`` (ISO 3166 code, e.g. "jp") for ``years`` years."""
    import holidays

    found = holidays.country_holidays(country.upper(), years=range(first_year, first_year + years))
    return tuple(sorted(d.isoformat() for d in found))


def compile_flow(name: str, flow: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """The routing-row form of one normalized flow (see the module docstring)."""
    hours = flow.get("hours")
    open_minutes: dict[str, list[list[int]]] | None = None
    holidays: list[str] = []
    through: str | None = None
    closed: list[str] = []
    if hours is not None:
        open_minutes = {str(i): [] for i in range(7)}
        for day, spans in (hours.get("week") or {}).items():
            open_minutes[str(DAYS.index(day))] = [[minutes(a), minutes(b)] for a, b in spans]
        if hours.get("holidays"):
            holidays = list(holiday_dates(hours["holidays"], today.year))
            through = f"{today.year + HOLIDAY_YEARS - 1}-12-31"
        closed = sorted(set(hours.get("closed") or []))
    targets = {
        k: {kind: spec for kind, spec in v.items() if spec is not None} for k, v in flow["targets"].items()
    }
    return {
        "name": name,
        "open": open_minutes,
        "holidays": holidays,
        "holidays_through": through,
        "closed": closed,
        "menu": dict(flow["menu"]) if flow.get("menu") else None,
        "targets": targets,
        "first": next(iter(flow["targets"])),
        "after_hours": dict(flow.get("after_hours") or {"voicemail": False, "message": None, "target": None}),
    }


def branch(compiled: Mapping[str, Any], local: datetime) -> str:
    """Which branch a call at the account-local time ``local`` takes: open, holiday, closed (a
    closed date of the config) or after-hours."""
    open_minutes = compiled.get("open")
    if open_minutes is None:
        return OPEN
    day = local.date().isoformat()
    if day in (compiled.get("closed") or ()):
        return CLOSED
    if day in (compiled.get("holidays") or ()):
        return HOLIDAY
    now = local.hour * 60 + local.minute
    for start, end in open_minutes.get(str(local.weekday())) or ():
        if start <= now < end:
            return OPEN
    return AFTER_HOURS


def counter_attribute(flow: str, target: str) -> str:
    """The numbers-row attribute counting the round-robin calls of one ring group."""
    return f"rr#{flow}#{target}"


def sticky_attribute(account: str) -> str:
    """The callers-row attribute naming the agent who last answered this caller for ``account``."""
    return f"agent#{account}"


def member_order(group: Mapping[str, Any], *, counter: int, sticky: str | None) -> tuple[list[int], bool]:
    """The order to ring the members of a ring group: (member indexes, counted).

    Sequential starts with the first member, round robin with member ``counter % n`` (``counted``
    True: the caller bumps the counter). A repeat caller's last agent, when a member, goes first
    (and the round-robin counter is left alone, so the rotation stays fair for the others)."""
    n = len(group["members"])
    agents = [m["agent"] for m in group["members"]]
    strategy = group.get("strategy", "simultaneous")
    if sticky in agents:
        start = agents.index(sticky)
        counted = False
    elif strategy == "round_robin":
        start = counter % n
        counted = True
    else:
        start, counted = 0, False
    return [(start + i) % n for i in range(n)], counted
