"""Stream records of the calls table -> call events (pure).

One record gives zero, one or two events, in this order:
- ``call.started``: the call's first image (no old image, or an old image without ``account``:
  a row a Twilio callback made before the call's origin was written, e.g. after an outage);
- ``call.completed``: the image that first carries ``ended_at`` in a call with an account (a
  row made by a callback may carry ``ended_at`` before it has one);
- ``call.updated``: any other change of what the call says (stage, value, tags, score, agent,
  recording, ...); a write that changes nothing but ``version``/``updated_at`` gives none.

Every event carries the call's new image decoded (``calltrack.call_items.call_from_item``) and its
``version``, so a subscriber can deduplicate (delivery is at least once: redelivered batches, and
an UpdateItem that creates an item may show up as two INSERT records). Test calls (``test: true``)
and removed items give no event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calltrack.call_items import call_from_item

STARTED = "call.started"
COMPLETED = "call.completed"
UPDATED = "call.updated"
BOOKKEEPING = frozenset({"version", "updated_at"})


def changed_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Sorted names of the attributes whose value differs between the two images."""
    before = old or {}
    return sorted(
        name for name in set(before) | set(new)
        if name not in BOOKKEEPING and before.get(name) != new.get(name)
    )


def call_events(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The call events of one stream record (see the module docstring)."""
    if record.get("eventName") == "REMOVE":
        return []
    stream = record.get("dynamodb") or {}
    new = call_from_item(stream.get("NewImage"))
    if not new or not new.get("call_sid") or not new.get("account") or new.get("test"):
        return []
    old = call_from_item(stream.get("OldImage"))
    changed = changed_fields(old, new)
    # A row without an account was made by a callback before the call's origin: no event was
    # sent for it, so this image is the call's first as far as subscribers know.
    origin = old is None or not old.get("account")
    kinds: list[str] = []
    if origin:
        kinds.append(STARTED)
    if new.get("ended_at") and (origin or not (old or {}).get("ended_at")):
        kinds.append(COMPLETED)
    if not origin and not kinds and changed:
        kinds.append(UPDATED)
    base = {
        "account": new["account"],
        "call_sid": new["call_sid"],
        "version": int(new.get("version") or 0),
        "changed": changed,
        "call": new,
    }
    return [{"type": kind, **base} for kind in kinds]
