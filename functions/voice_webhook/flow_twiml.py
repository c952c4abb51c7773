"""The TwiML of a call flow: hours and holidays, the menu, forwards and ring groups.

Everything comes from the compiled flow in the number's routing row (``calltrack.call_flows``) and
the callers row the incoming-call read already returned, so a flow costs no AWS request:

- closed (after hours, a public holiday, a closed date): the after-hours target, else the message
  and (``voicemail``) a recording, else the message and hang up;
- open with a menu: <Gather> one key -> ``/twilio/menu`` (a timeout comes back without ``Digits``);
- a ``forward`` target: one <Dial><Number>;
- a ring group: ``simultaneous`` rings every member in one <Dial> (Twilio connects the first to
  pick up); ``sequential`` and ``round_robin`` ring one member per <Dial>, whose action
  ``/twilio/ring-next`` rings the next one (the last member's action is ``/twilio/dial-status``).
  Round robin starts at member ``counter % n``, where the counter is a numbers-row attribute
  bumped in the call's own write (``Step.bump``). A repeat caller's last agent goes first.

Each member's <Number url> is ``/twilio/whisper?agent=NAME&call=CALLSID``: Twilio requests it on
the member's leg when that member answers, so the whisper route records who answered (the call's
``agent``; the URL is part of the signed request, so the CallSid in it is ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from calltrack.call_flows import OPEN, counter_attribute, member_order
from calltrack.twilio_edge import (
    DialPlan,
    dial_twiml,
    gather_twiml,
    say_twiml,
    url_with_query,
    voicemail_twiml,
)

CLOSED_MESSAGE = {
    "ja": "ただいま営業時間外です。恐れ入りますが、営業時間内におかけ直しください。",
    "en": "We are closed right now. Please call again during our opening hours.",
}
# Closed with voicemail and no message of the account's own: the caller is asked for a message
# (the message above tells them to call again, and they hang up before the tone).
CLOSED_VOICEMAIL_MESSAGE = {
    "ja": "ただいま営業時間外です。発信音のあとにメッセージをお話しください。",
    "en": "We are closed right now. Please leave a message after the tone.",
}


@dataclass(frozen=True)
class CallContext:
    """What every TwiML of one call needs (from the number's routing row and the request)."""

    base: str  # the public URL, no trailing slash
    caller_id: str
    language: str
    started: int  # the call's start (epoch s): the dial actions' ``t``
    record: bool = False
    announcement: str | None = None
    whisper: str | None = None
    voicemail: bool = False
    ring_timeout: int = 20
    call_sid: str = ""  # the caller's call: named in each member's whisper URL (who answered it)

    def query(self, **extra: str) -> dict[str, str]:
        out = {"t": str(self.started), "lang": self.language}  # lang: what a caller nobody answered hears
        if self.voicemail:
            out["vm"] = "1"
        return {**out, **extra}

    def url(self, path: str, **extra: str) -> str:
        return url_with_query(f"{self.base}{path}", self.query(**extra))

    def dialling_url(self, path: str, **extra: str) -> str:
        """The action URL of a step whose answer rings someone (the menu, the next member): it
        carries ``rec``, whether this call records, decided and announced when it came in, which
        the follow-up keeps whatever the number's row says by then (``voice_webhook.flow``)."""
        return self.url(path, **extra, rec="1" if self.record else "0")

    def whisper_url(self, agent: str | None = None) -> str | None:
        if not (agent or self.whisper):
            return None
        params = {"say": self.whisper or "", "lang": self.language, "agent": agent or "",
                  "call": self.call_sid if agent else ""}
        return url_with_query(f"{self.base}/twilio/whisper", params)


@dataclass
class Step:
    """One answer of the flow: TwiML, the call attributes it decided, the counter to bump."""

    twiml: str
    fields: dict[str, Any] = field(default_factory=dict)
    bump: str | None = None


def _plan(
    ctx: CallContext,
    *,
    announce: bool,
    timeout: int,
    action: str,
    forward_to: str = "",
    members: tuple[tuple[str, str | None], ...] = (),
) -> DialPlan:
    return DialPlan(
        forward_to=forward_to,
        caller_id=ctx.caller_id,
        ring_timeout=timeout,
        language=ctx.language,
        announcement=ctx.announcement if (announce and ctx.record) else None,
        record=ctx.record,
        whisper_url=ctx.whisper_url(),
        action_url=action,
        recording_callback_url=f"{ctx.base}/twilio/recording",
        members=members,
    )


def dial_target(
    ctx: CallContext,
    flow: Mapping[str, Any],
    target: str,
    *,
    counters: Mapping[str, Any],
    sticky: str | None,
    announce: bool = True,
) -> Step:
    """Ring one target of the flow (a forward or a ring group)."""
    spec = flow["targets"][target]
    fields: dict[str, Any] = {"flow": flow["name"], "target": target}
    if "forward" in spec:
        return Step(forward(ctx, spec["forward"], announce=announce), fields)
    group = spec["ring_group"]
    if group.get("strategy") == "simultaneous":
        return Step(ring_all(ctx, group, announce=announce), fields)
    attr = counter_attribute(flow["name"], target)
    order, counted = member_order(group, counter=_int(counters.get(attr)), sticky=sticky)
    return Step(
        dial_member(ctx, flow, target, order, 0, announce=announce), fields, attr if counted else None
    )


def dial_member(
    ctx: CallContext, flow: Mapping[str, Any], target: str, order: list[int], index: int, *, announce: bool
) -> str:
    """Ring member ``order[index]`` of a sequential / round-robin group; its action rings the next."""
    group = flow["targets"][target]["ring_group"]
    member = group["members"][order[index]]
    if index + 1 < len(order):
        action = ctx.dialling_url(
            "/twilio/ring-next", f=flow["name"], g=target, o=".".join(map(str, order)), i=str(index + 1)
        )
    else:
        action = ctx.url("/twilio/dial-status")
    plan = _plan(
        ctx,
        announce=announce,
        timeout=int(group["ring_seconds"]),
        action=action,
        members=((member["number"], ctx.whisper_url(member["agent"])),),
    )
    return dial_twiml(plan)


def incoming(
    ctx: CallContext, flow: Mapping[str, Any], branch: str, *, counters: Mapping[str, Any], sticky: str | None
) -> Step:
    """The answer to an incoming call on ``branch`` (``calltrack.call_flows.branch``)."""
    if branch != OPEN:
        return closed(ctx, flow, branch, counters=counters, sticky=sticky)
    menu = flow.get("menu")
    if menu:
        twiml = gather_twiml(
            menu["prompt"],
            language=ctx.language,
            action_url=ctx.dialling_url("/twilio/menu", f=flow["name"]),
            timeout=int(menu.get("timeout_seconds") or 5),
            announcement=ctx.announcement if ctx.record else None,
        )
        return Step(twiml, {"flow": flow["name"], "flow_branch": OPEN})
    step = dial_target(ctx, flow, flow["first"], counters=counters, sticky=sticky)
    step.fields["flow_branch"] = OPEN
    return step


def after_menu(
    ctx: CallContext, flow: Mapping[str, Any], digits: str, *, counters: Mapping[str, Any], sticky: str | None
) -> Step:
    """The caller pressed ``digits`` (empty: the menu timed out; an unknown key counts as that)."""
    menu = flow.get("menu") or {}
    target = (menu.get("options") or {}).get(digits) or menu.get("timeout_to") or flow["first"]
    step = dial_target(ctx, flow, target, counters=counters, sticky=sticky, announce=False)
    step.fields["menu_choice"] = digits if digits in (menu.get("options") or {}) else "timeout"
    return step


def closed(
    ctx: CallContext, flow: Mapping[str, Any], branch: str, *, counters: Mapping[str, Any], sticky: str | None
) -> Step:
    after = flow.get("after_hours") or {}
    fields = {"flow": flow["name"], "flow_branch": branch}
    if after.get("target"):
        # with voicemail, nobody answering the after-hours target leads to it (/twilio/dial-status)
        rings = replace(ctx, voicemail=True) if after.get("voicemail") else ctx
        step = dial_target(rings, flow, after["target"], counters=counters, sticky=sticky)
        step.fields.update(fields)
        return step
    lang = "ja" if ctx.language.lower().startswith("ja") else "en"
    default = CLOSED_VOICEMAIL_MESSAGE if after.get("voicemail") else CLOSED_MESSAGE
    text = after.get("message") or default[lang]
    if after.get("voicemail"):
        twiml = voicemail_twiml(
            text,
            language=ctx.language,
            recording_callback_url=f"{ctx.base}/twilio/recording",
            done_url=f"{ctx.base}/twilio/voicemail-done",
        )
        return Step(twiml, {**fields, "voicemail": True})
    return Step(say_twiml(text, language=ctx.language), fields)


def fail_open(ctx: CallContext, flow: Mapping[str, Any]) -> str:
    """Storage is down: no hours, no menu, no counters; ring the flow's first target at once (every
    member of a ring group together: the best chance that someone answers)."""
    spec = flow["targets"][flow["first"]]
    if "forward" in spec:
        return forward(ctx, spec["forward"])
    return ring_all(ctx, spec["ring_group"])


def forward(ctx: CallContext, number: str, *, announce: bool = True) -> str:
    """One <Dial><Number> (with the whisper), its result to /twilio/dial-status."""
    plan = _plan(ctx, announce=announce, timeout=ctx.ring_timeout, action=ctx.url("/twilio/dial-status"),
                 forward_to=number)
    return dial_twiml(plan)


def ring_all(ctx: CallContext, group: Mapping[str, Any], *, announce: bool = True) -> str:
    """Every member of a ring group in one <Dial>: Twilio connects the first to pick up."""
    members = tuple((m["number"], ctx.whisper_url(m["agent"])) for m in group["members"])
    plan = _plan(ctx, announce=announce, timeout=int(group["ring_seconds"]),
                 action=ctx.url("/twilio/dial-status"), members=members)
    return dial_twiml(plan)


def parse_order(text: str, size: int) -> list[int] | None:
    """The ``o`` query of /twilio/ring-next ("1.0.2"): a permutation of the group's members, or None."""
    try:
        order = [int(x) for x in text.split(".")]
    except ValueError:
        return None
    return order if sorted(order) == list(range(size)) else None


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0
