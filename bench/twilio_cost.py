"""The Twilio side of the cost per 1,000 calls (issue 24), next to the measured AWS side.

From ``bench/prices.json`` (dates, sources, and which figures are assumptions): per call, the
inbound minutes (ringing + talk) and the forwarded leg's minutes, each leg billed in whole minutes
(Twilio rounds every partial minute up), and recording; per month, the pool's number rental at the
sizes P7 found (or the rule of one number per 20 daily visitors), spread over the calls that
traffic brings in a month. Transcripts are Amazon Transcribe's (an AWS cost, when on), shown apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import Row

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"
DAYS_PER_MONTH = 30


def prices() -> dict[str, Any]:
    return dict(json.loads(PRICES_FILE.read_text(encoding="utf-8")))


def per_call_usd(p: dict[str, Any]) -> dict[str, float]:
    """Twilio's part of one call: each leg's minutes as billed (partial minutes rounded up: on
    average ``round_up_minutes_per_leg`` more than the leg lasts), and the recorded minutes."""
    tw, call = p["twilio"], p["call"]
    talk, ring = float(call["talk_minutes"]), float(call["ring_minutes"])
    rounding = float(tw["minute_rounding"]["round_up_minutes_per_leg"])
    return {
        "inbound minutes": (talk + ring + rounding) * tw["inbound_minute_jp_national"]["usd"],
        "forwarded minutes": (talk + rounding) * tw["forward_minute_jp_mobile"]["usd"],
        "recording": talk * tw["recording_minute"]["usd"],
    }


def transcription_usd(p: dict[str, Any]) -> float:
    """Amazon Transcribe for one call's recorded minutes (when transcripts are on)."""
    return float(p["call"]["talk_minutes"]) * float(p["aws_transcribe"]["usd_per_minute"])


def rental_per_1000_calls(p: dict[str, Any], pool_size: int, daily_visitors: int) -> float:
    """A pool's monthly rent over the calls a month of that traffic brings, per 1,000 calls."""
    calls_month = daily_visitors * DAYS_PER_MONTH * p["calls_per_1000_visitors"]["calls"] / 1000
    rent = pool_size * p["twilio"]["number_month_jp_national"]["usd"]
    return rent / calls_month * 1000 if calls_month else 0.0


def rows(
    aws_per_1000: float | None, pools: dict[int, dict[str, Any]]
) -> tuple[list[Row], dict[str, Any]]:
    """Cost rows: Twilio per-call parts, rental per traffic level (P7's pool vs the rule), and
    AWS and Twilio side by side. ``pools``: daily visitors -> {"p7": size or None, "rule": size,
    "dni": a website call's DNI cost per 1,000 calls (``bench.dni_cost``) or None}."""
    p = prices()
    out: list[Row] = []
    usage = per_call_usd(p)
    for label, usd in usage.items():
        out.append(Row(f"Cost/1k calls: Twilio {label}", f"${usd * 1000:.2f}"))
    transcribe = transcription_usd(p) * 1000
    out.append(Row("Cost/1k calls: Amazon Transcribe (AWS, when transcripts are on)", f"${transcribe:.2f}"))
    details: dict[str, Any] = {
        "twilio_usage_per_1000_calls_usd": {k: round(v * 1000, 2) for k, v in usage.items()},
        "transcribe_per_1000_calls_usd": round(transcribe, 2),
        "levels": {},
        "prices_file": str(PRICES_FILE.name),
        "retrieved": p["retrieved"],
    }
    usage_1000 = sum(usage.values()) * 1000
    for visitors, sizes in sorted(pools.items()):
        rule = int(sizes["rule"] or 0)
        found = sizes.get("p7")
        rent_rule = rental_per_1000_calls(p, rule, visitors)
        rent_p7 = rental_per_1000_calls(p, int(found), visitors) if found else None
        details["levels"][visitors] = {
            "pool_rule": rule,
            "pool_p7": found,
            "rental_rule_per_1000_calls_usd": round(rent_rule, 2),
            "rental_p7_per_1000_calls_usd": round(rent_p7, 2) if rent_p7 is not None else None,
        }
        shown = rent_p7 if rent_p7 is not None else rent_rule
        total_twilio = usage_1000 + shown
        aws = f"AWS ${aws_per_1000:.2f}" if aws_per_1000 is not None else "AWS n/a"
        if sizes.get("dni") is not None:
            aws += f" + DNI ${sizes['dni']:.2f}"
        out.append(
            Row(
                f"Cost/1k calls at {visitors:,} visitors/day: AWS | Twilio",
                f"{aws} | Twilio ${total_twilio:.2f} (numbers ${shown:.2f} for "
                f"{found or rule} numbers{'' if found else ' (rule)'}; rule's {rule}: ${rent_rule:.2f}; "
                f"minutes + recording ${usage_1000:.2f})",
            )
        )
        details["levels"][visitors]["twilio_total_per_1000_calls_usd"] = round(total_twilio, 2)
    assumed = [k for k, v in p["twilio"].items() if v.get("assumption")]
    note = (
        f"Twilio prices from bench/prices.json (retrieved {p['retrieved']}); ASSUMPTIONS (not confirmed "
        f"by a public page in reach): {', '.join(assumed)}, the call's minutes and 4% of visitors calling. "
        "Each Twilio leg is billed in whole minutes (support article 223132307); Amazon Transcribe "
        "is shown apart (an AWS cost, only when transcripts are on)."
    )
    details["assumed"] = assumed
    return out, {**details, "note": note}
