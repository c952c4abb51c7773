"""A seeded, reproducible simulation of a local business's calls (pure: no I/O).

The scenario decides *what happens in the world*: which visitor came from which ad, who called
which number when, whether the clinic picked up, what became of the lead and what each channel cost.
It knows nothing of calltrack: the player (demo/player.py) plays it through the product's HTTP APIs,
and only the accuracy line compares the product's answers with ``SimCall.truth``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Search keywords by pool channel (the seed's "電話につながった検索キーワード").
KEYWORDS: dict[str, list[str]] = {
    "google-ads": [
        "歯医者 新宿",
        "インプラント 費用",
        "歯医者 土曜 診療",
        "ホワイトニング 新宿",
        "親知らず 抜歯",
    ],
    "yahoo-ads": ["歯医者 新宿 口コミ", "インプラント 安い", "歯科 夜間"],
}
# Relative call volume, lead probability (given answered) and win probability (given lead).
CHANNEL_PROFILE: dict[str, tuple[float, float, float]] = {
    "google-ads": (10, 0.55, 0.45),
    "yahoo-ads": (5, 0.40, 0.35),
    "facebook": (4, 0.06, 0.20),
    "instagram": (3, 0.30, 0.30),
    "organic": (4, 0.45, 0.40),
    "direct": (3, 0.50, 0.40),
    "newspaper": (4, 0.35, 0.35),
    "flyer": (3, 0.25, 0.30),
    "signboard": (2, 0.30, 0.30),
    "radio": (2, 0.15, 0.20),
}
DEFAULT_PROFILE = (2.0, 0.3, 0.3)
# Growth from the first to the last simulated month (multiplier on volume): drives the review.
GROWTH: dict[str, float] = {
    "google-ads": 1.8,
    "facebook": 1.8,
    "instagram": 1.6,
    "yahoo-ads": 1.3,
    "radio": 0.5,
    "signboard": 0.7,
}
HOUR_WEIGHTS = {9: 6, 10: 10, 11: 9, 12: 9, 13: 6, 14: 6, 15: 7, 16: 7, 17: 8, 18: 6}
WEEKDAY_WEIGHTS = [10, 9, 9, 8, 10, 8, 3]  # Mon..Sun
SPEND_PER_CALL = {
    "google-ads": 3500,
    "yahoo-ads": 3000,
    "facebook": 4500,
    "instagram": 3000,
    "radio": 9000,
    "newspaper": 4000,
    "flyer": 2500,
    "signboard": 2000,
}


@dataclass(frozen=True)
class Source:
    """Where a simulated caller came from: a static number or a DNI pool."""

    channel: str
    campaign: str | None
    kind: str  # "static" or "pool"
    number: str | None = None  # static numbers
    pool: str | None = None
    match: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    visitor_id: str
    session_id: str
    page_url: str
    referrer: str
    utm: dict[str, str]
    click_ids: dict[str, str]
    keyword: str | None
    at: datetime


@dataclass
class SimCall:
    index: int
    call_sid: str
    at: datetime  # UTC
    source: Source
    caller: str
    session: Session | None
    answered: bool
    dial_status: str  # completed / no-answer / busy
    ring_seconds: int
    talk_seconds: int
    recording_sid: str | None
    stage: str | None = None  # lead / opportunity / won / lost
    value: int | None = None
    crm: bool = False  # the outcome arrives as a CRM lead (else a manager PATCH)
    crm_phone_format: str = "e164"  # "national" for some CRM rows
    duplicate_callbacks: bool = False
    out_of_order: bool = False
    # What is said on the recording: (speaker "caller" | "staff", start seconds, text); the local
    # Transcribe returns it as the call's transcript.
    conversation: list[tuple[str, float, str]] = field(default_factory=list)

    @property
    def truth(self) -> dict[str, Any]:
        return {
            "channel": self.source.channel,
            "campaign": self.source.campaign,
            "keyword": self.session.keyword if self.session else None,
        }


@dataclass
class Scenario:
    account: str
    timezone: str
    start: date
    end: date
    calls: list[SimCall]
    spend: dict[tuple[str, str], int]  # (YYYY-MM, channel) -> JPY
    unmatched_leads: list[dict[str, Any]]

    @property
    def months(self) -> list[str]:
        return sorted({m for m, _ in self.spend})


def _sid(prefix: str, seed: int, *parts: object) -> str:
    digest = hashlib.sha256(f"{seed}:{prefix}:{':'.join(map(str, parts))}".encode()).hexdigest()
    return prefix + digest[:32]


def sources_from_config(config: dict[str, Any]) -> list[Source]:
    """Static numbers (as E.164, the form Twilio sends in ``To``) and DNI pools of an account file."""
    from calltrack.phone import normalize, region_for_timezone

    region = region_for_timezone(config.get("timezone", "Asia/Tokyo"))
    sources = [
        Source(n["channel"], n.get("campaign"), "static", number=normalize(str(n["number"]), region))
        for n in config.get("numbers", [])
    ]
    for pool in config.get("pools", []):
        sources.append(
            Source(
                pool["channel"],
                pool.get("campaign"),
                "pool",
                pool=pool["id"],
                match=dict(pool.get("match") or {}),
            )
        )
    return sources


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value else None


def _session_for(source: Source, rng: random.Random, seed: int, i: int, at: datetime, site: str) -> Session:
    """A website visit that the pool's match rules send to ``source``'s pool."""
    match = source.match
    utm: dict[str, str] = {}
    click_ids: dict[str, str] = {}
    referrer = ""
    keyword = None
    if match.get("utm_source"):
        utm["source"] = _first(match["utm_source"]) or ""
        utm["medium"] = _first(match.get("utm_medium")) or (
            "cpc" if source.channel.endswith("-ads") else "social"
        )
        utm["campaign"] = source.campaign or f"{source.channel}-2026"
    click_id = _first(match.get("click_ids"))
    if click_id:
        click_ids[click_id] = _sid("", seed, "click", i)[:24]
    if source.channel in KEYWORDS:
        keyword = rng.choice(KEYWORDS[source.channel])
        utm["term"] = keyword
    domain = _first(match.get("referrer_domains"))
    if domain:
        referrer = f"https://{domain}/"
    query = "&".join(
        [f"utm_{k}={v}" for k, v in utm.items() if k != "term"] + [f"{k}={v}" for k, v in click_ids.items()]
    )
    page = rng.choice(["/", "/implant", "/whitening", "/access"])
    return Session(
        visitor_id=_sid("v", seed, i),
        session_id=_sid("s", seed, i),
        page_url=f"{site}{page}" + (f"?{query}" if query else ""),
        referrer=referrer,
        utm=utm,
        click_ids=click_ids,
        keyword=keyword,
        at=at,
    )


# What callers ask about, by channel (the seed's clients added what callers asked to their FAQ).
TOPICS: dict[str, list[str]] = {
    "google-ads": ["インプラントの費用はどのくらいですか。", "土曜日も診療していますか。"],
    "yahoo-ads": ["ホワイトニングの料金を教えてください。", "夜は何時まで診療していますか。"],
    "facebook": ["キャンペーンの内容を教えてください。", "ホワイトニングの料金を教えてください。"],
    "instagram": ["ホワイトニングの料金を教えてください。", "キャンペーンの内容を教えてください。"],
}
COMMON_TOPICS = ["駐車場はありますか。", "保険は使えますか。", "親知らずの抜歯はできますか。",
                 "インプラントの費用はどのくらいですか。", "土曜日も診療していますか。"]


def conversation(call_index: int, seed: int, channel: str, stage: str | None) -> list[tuple[str, float, str]]:
    """The recording's conversation: a greeting, the caller's question, and a booking when the
    call became a lead (its own random stream: the rest of the simulation does not change)."""
    rng = random.Random(f"{seed}:talk:{call_index}")
    topic = rng.choice(TOPICS.get(channel, []) + COMMON_TOPICS)
    lines = [
        ("staff", 0.5, "お電話ありがとうございます、アクメ歯科クリニックです。"),
        ("caller", 3.2, topic),
        ("staff", 6.8, "はい、詳しくご説明いたします。"),
    ]
    if stage:
        lines += [("caller", 15.4, rng.choice(["来週、予約したいのですが。", "予約をお願いできますか。"])),
                  ("staff", 18.9, "かしこまりました、ご予約をお取りします。")]
    else:
        lines += [("caller", 15.4, "わかりました、検討します。")]
    return lines


def build(
    config: dict[str, Any], *, calls: int, seed: int, days: int, end: date = date(2026, 11, 30)
) -> Scenario:
    """The whole simulated period: ``days`` days ending on ``end`` (account time zone), ``calls`` calls."""
    rng = random.Random(seed)
    tz = ZoneInfo(config.get("timezone", "Asia/Tokyo"))
    start = end - timedelta(days=days - 1)
    sources = sources_from_config(config)
    site = ((config.get("site") or {}).get("origins") or ["https://example.jp"])[0]
    callers = [f"+8190{rng.randrange(10**8):08d}" for _ in range(max(8, int(calls * 0.8)))]
    day_list = [start + timedelta(days=d) for d in range(days)]

    def weight(src: Source, day: date) -> float:
        base = CHANNEL_PROFILE.get(src.channel, DEFAULT_PROFILE)[0]
        growth = GROWTH.get(src.channel, 1.0)
        progress = (day - start).days / max(1, days - 1)
        return base * (1 + (growth - 1) * progress)

    sim: list[SimCall] = []
    for i in range(calls):
        day = rng.choices(day_list, weights=[WEEKDAY_WEIGHTS[d.weekday()] for d in day_list])[0]
        src = rng.choices(sources, weights=[weight(s, day) for s in sources])[0]
        hour = rng.choices(list(HOUR_WEIGHTS), weights=list(HOUR_WEIGHTS.values()))[0]
        local = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=tz)
        at = local.astimezone(UTC)
        # The lunch-hour staffing gap: most calls at 12:xx on weekdays go unanswered.
        p_miss = 0.9 if hour == 12 and day.weekday() < 5 else 0.1
        if (end - day).days < 7:  # the last week: a receptionist is out, so misses pile up (the alert)
            p_miss = 0.95 if hour in (12, 13) else 0.3
        answered = rng.random() >= p_miss
        dial_status = "completed" if answered else rng.choice(["no-answer", "no-answer", "busy"])
        caller = rng.choice(callers)
        session = None
        if src.kind == "pool":
            session = _session_for(src, rng, seed, i, at - timedelta(minutes=rng.randrange(1, 25)), site)
        profile = CHANNEL_PROFILE.get(src.channel, DEFAULT_PROFILE)
        stage = value = None
        if answered and rng.random() < profile[1]:
            stage = "lead"
            if rng.random() < profile[2] + 0.2:
                stage = "opportunity"
                if rng.random() < profile[2] / (profile[2] + 0.2):
                    stage, value = "won", rng.choice([30000, 55000, 80000, 150000, 350000])
                elif rng.random() < 0.5:
                    stage = "lost"
        sim.append(
            SimCall(
                index=i,
                call_sid=_sid("CA", seed, "call", i),
                at=at,
                source=src,
                caller=caller,
                session=session,
                answered=answered,
                dial_status=dial_status,
                ring_seconds=rng.randrange(3, 25) if answered else 25,
                talk_seconds=rng.randrange(45, 600) if answered else 0,
                recording_sid=_sid("RE", seed, "rec", i) if answered else None,
                stage=stage,
                value=value,
                crm=stage is not None and rng.random() < 0.7,
                crm_phone_format="national" if rng.random() < 0.4 else "e164",
                duplicate_callbacks=rng.random() < 0.15,
                out_of_order=rng.random() < 0.15,
                conversation=conversation(i, seed, src.channel, stage) if answered else [],
            )
        )
    sim.sort(key=lambda c: c.at)
    spend: dict[tuple[str, str], int] = {}
    for call in sim:
        month = call.at.astimezone(tz).strftime("%Y-%m")
        per_call = SPEND_PER_CALL.get(call.source.channel)
        if per_call:
            spend[(month, call.source.channel)] = spend.get((month, call.source.channel), 0) + per_call
    unmatched = [
        {
            "external_id": f"crm-walkin-{seed}-{k}",
            "phone": f"03-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}",
            "created_at": datetime(end.year, end.month, max(1, end.day - k), 3, tzinfo=UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "stage": "lead",
        }
        for k in range(max(1, calls // 100))
    ]
    return Scenario(config["account"], str(tz), start, end, sim, spend, unmatched)


def national(e164: str) -> str:
    """+819012345678 -> 090-1234-5678 (how a Japanese CRM often stores it)."""
    digits = "0" + e164[3:]
    return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
