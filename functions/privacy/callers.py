"""A caller's data in one account: everything held about one number, exported or erased.

The logic takes its storage as a ``CallerStore`` (``privacy.store`` on DynamoDB and S3; an
in-memory fake in tests/support/privacy.py). What belongs to the caller in account ``a``:

- calls of ``a`` whose ``caller`` is the number (the transcript and rule hits live on the call);
- the CRM leads of ``a`` whose ``phone`` is the number;
- the recordings rows of those calls (each replaced by its ``erased`` row: the two ids, nothing of
  the account, gone after 30 days, so a message of the recording still on its way ends there
  instead of writing a row back; ``recording_ingest.ingest.erased_row``), and every S3 object version
  (and delete marker) under the calls' recording and transcript folders
  (``recordings/{a}/{yyyy}/{mm}/{CallSid}/``, ``transcripts/{a}/{yyyy}/{mm}/{CallSid}/``);
- the conversions and webhook deliveries of those calls (pending or not: the payload of a
  delivery is the call, with the number);
- the per-call rollup markers of those calls, if written before 2026-12-01 (the aggregate
  counters stay, they hold no personal data: the rollup consumer ignores the calls' REMOVEs);
- the ``first#{a}`` and ``agent#{a}`` attributes of the number's row in ``callers``, and
  ``last#{a}`` of its redial item ``redial#{number}`` there (each goes when no other account's mark
  is left; the redial item also expires a week after the caller's last pool call);
- the rows of those calls in the account's QuickSight exports (the files of the days around each
  call are rewritten; ``export_days``);
- Twilio's copy of the calls' recordings, when the account has Twilio's copies deleted
  (``recording.delete_from_twilio``): the recordings function is asked to delete each one Twilio
  may still hold (a recording still in its retry ladder, or whose delete at Twilio is being
  retried), by a message on its queue (``recording_ingest.ingest.erased_message``).

Erasure deletes the calls last, so a run that fails half-way finds the rest again next time:
``erase`` is idempotent and answers what it removed (a second run answers zeros).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from calltrack.phone import normalize


class CallerStore(Protocol):
    def calls(self, account: str, number: str) -> list[dict[str, Any]]: ...

    def leads(self, account: str, number: str) -> list[dict[str, Any]]: ...

    def recordings(self, account: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def conversions(self, account: str, call_sids: list[str]) -> list[dict[str, Any]]: ...

    def deliveries(self, account: str, call_sids: list[str]) -> list[dict[str, Any]]: ...

    def object_versions(self, prefixes: list[str]) -> list[tuple[str, str]]:
        """(key, version id) of every version and delete marker under the prefixes."""
        ...

    def presign(self, key: str) -> str: ...

    def stage_export(self, key: str, body: bytes) -> str:
        """Store an export too large to answer; -> a presigned URL to it."""
        ...

    def delete_staged_exports(self, prefix: str) -> int: ...

    def drop_export_rows(self, account: str, call_sids: set[str], days: set[date] | None) -> int:
        """Rewrite the account's export files of ``days`` (every file: None) without those calls'
        rows; answers rows dropped."""
        ...

    def delete_object_versions(self, versions: list[tuple[str, str]]) -> None: ...

    def erase_recordings(self, recordings: list[dict[str, Any]], at: float) -> None:
        """Replace each row by its ``erased`` row (``recording_ingest.ingest.erased_row``)."""
        ...

    def delete_conversions(self, keys: list[tuple[str, str]]) -> None: ...

    def delete_deliveries(self, account: str, delivery_ids: list[str]) -> None: ...

    def delete_rollup_markers(self, call_sids: list[str]) -> None: ...

    def delete_leads(self, account: str, external_ids: list[str]) -> None: ...

    def forget_first_call(self, account: str, number: str) -> bool:
        """Remove ``first#{account}`` and ``agent#{account}`` from the number's callers row and
        ``last#{account}`` from its redial item; True when one was there."""
        ...

    def mark_erased(
        self, account: str, number: str, at: float, call_sids: list[str], days: set[date] | None
    ) -> None:
        """Leave the number's erasure mark for ``account`` (``calltrack.erasure_marks``), adding
        ``call_sids`` and the export ``days`` (None: every day) to those it remembers."""
        ...

    def forget_erased_calls(self, account: str, number: str) -> None:
        """The erasure ran to its end: its mark keeps no CallSids or days for ``account``."""
        ...

    def erased_calls(self, account: str, number: str) -> tuple[list[str], set[date] | None]:
        """The CallSids and export days an earlier erasure of the number from ``account`` left in
        its mark (none when there is no mark)."""
        ...

    def delete_calls(self, call_sids: list[str]) -> None: ...


def caller_number(raw: str, region: str = "JP") -> str:
    """The path's number as E.164 (URL-decoded by the gateway; a national number is read in the
    account's region, as its calls and leads are); 400 names ``number``. A number written as the
    webhook stores callers (``+`` and digits) that the numbering plan does not know is taken as
    written: such a caller's calls are stored under it, and must be found to be exported or erased."""
    from calltrack.errors import BadRequest
    from calltrack.phone import is_e164

    try:
        return normalize(raw, region, field="number")
    except BadRequest:
        if is_e164(raw.strip()):
            return raw.strip()
        raise


def account_region(accounts: Any, account: str) -> str:
    """The region national numbers of ``account`` are read in (its time zone's); Japan when the
    account is gone or its stored config no longer validates (erasure still finds what is left)."""
    from calltrack.accounts import UnknownAccount
    from calltrack.phone import region_for_timezone

    try:
        return region_for_timezone(accounts.get(account).timezone)
    except (UnknownAccount, ValueError):  # gone, or the config's validation error
        # (a storage error is not an answer: reading a US number as Japanese would erase nobody
        # and answer 200; it goes up as the 503 to retry)
        return "JP"


# Twilio's <Dial> lasts 4 hours at the most, after the ringing and the menu; the end callbacks and
# the recording follow within minutes. A call of the number younger than that is still being written.
LONGEST_CALL = timedelta(hours=4, minutes=30)
SETTLING = timedelta(minutes=10)


def _still_written(calls: Iterable[Mapping[str, Any]], now: datetime) -> str | None:
    """The start of a call of the number that is in progress or just ended, else None."""
    from calltrack.days import parse_started_at

    for call in calls:
        started, ended = parse_started_at(call.get("started_at")), parse_started_at(call.get("ended_at"))
        if ended is not None:
            if now - ended < SETTLING:
                return str(call.get("started_at"))
        elif started is not None and now - started < LONGEST_CALL + SETTLING:
            return str(call.get("started_at"))
    return None


def _month_folder(call: Mapping[str, Any]) -> str:
    stamp = str(call.get("started_at") or "")
    return f"{stamp[:4]}/{stamp[5:7]}" if len(stamp) >= 7 else ""


def object_prefixes(account: str, calls: Iterable[Mapping[str, Any]],
                    recordings: Iterable[Mapping[str, Any]]) -> list[str]:
    """The S3 folders holding the calls' recordings and transcripts (every version lives there)."""
    out: set[str] = set()
    for call in calls:
        sid, month = str(call.get("call_sid") or ""), _month_folder(call)
        if sid and month:
            out.add(f"recordings/{account}/{month}/{sid}/")
            out.add(f"transcripts/{account}/{month}/{sid}/")
        key = (call.get("recording") or {}).get("s3_key") if isinstance(call.get("recording"), dict) else None
        if key:
            out.add(str(key).rsplit("/", 1)[0] + "/")
    for row in recordings:
        key = row.get("s3_key")
        if key:
            folder = str(key).rsplit("/", 1)[0] + "/"
            out.add(folder)
            out.add("transcripts/" + folder.split("/", 1)[1])
    return sorted(out)


def _public_call(call: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in call.items() if k not in ("status_rank", "version")}


def export(account: str, number: str, store: CallerStore) -> dict[str, Any]:
    """Everything ``account`` holds about ``number`` as one JSON document."""
    calls = store.calls(account, number)
    sids = [str(c["call_sid"]) for c in calls]
    recordings = store.recordings(account, calls)
    out_recordings = []
    for row in recordings:
        item = {k: row.get(k) for k in ("recording_sid", "call_sid", "status", "stored_at",
                                         "duration_seconds", "expired_at") if row.get(k) is not None}
        if row.get("status") == "stored" and row.get("s3_key"):
            item["url"] = store.presign(str(row["s3_key"]))
        out_recordings.append(item)
    transcripts = [{"call_sid": c["call_sid"], "transcript": c["transcript"]}
                   for c in calls if c.get("transcript")]
    return {
        "account": account,
        "number": number,
        "calls": [_public_call(c) for c in calls],
        "crm_leads": store.leads(account, number),
        "recordings": out_recordings,
        "transcripts": transcripts,
        "conversions": [{"call_sid": c.get("call_sid"), "key": c.get("key"), "status": c.get("status"),
                         "destination": c.get("destination")}
                        for c in store.conversions(account, sids)],
        "webhook_deliveries": [{"delivery_id": d.get("delivery_id"), "call_sid": d.get("call_sid"),
                                "status": d.get("status"), "destination": d.get("destination")}
                               for d in store.deliveries(account, sids)],
    }


def export_days(calls: Iterable[Mapping[str, Any]]) -> set[date] | None:
    """The days whose export files may hold these calls' rows: a file is one local day of the
    account, so a call's UTC day and the days either side (zones are within UTC-12..+14). Only
    those files are read, not every day's file of the account (a year of exports is 365 reads:
    more than the request's 29 s). None, for every file, when a call has no start time."""
    days: set[date] = set()
    for call in calls:
        try:
            day = datetime.strptime(str(call.get("started_at") or "")[:10], "%Y-%m-%d").date()
        except ValueError:
            return None
        days |= {day - timedelta(days=1), day, day + timedelta(days=1)}
    return days


# Exports too large for one API answer wait here (exports bucket; S3 lifecycle: 1 day), keyed by
# the caller's reference (audit.caller_ref), never the number: an erasure finds and deletes them.
STAGED_PREFIX = "privacy-exports/"


def staged_prefix(account: str, caller_ref: str) -> str:
    return f"{STAGED_PREFIX}{account}/{caller_ref}/"


# Port: the recordings rows whose Twilio copy is to be deleted -> None (raises when it cannot ask)
TwilioDeletions = Callable[[list[dict[str, Any]]], None]


def deletes_at_twilio(accounts: Any, account: str) -> bool:
    """Whether ``account`` has Twilio's copies of its recordings deleted
    (``recording.delete_from_twilio``); False when the account is gone or its stored config no
    longer validates (as Twilio's copies were then kept)."""
    from calltrack.accounts import UnknownAccount

    try:
        return bool(accounts.get(account).recording.delete_from_twilio)
    except (UnknownAccount, ValueError):
        return False


def erase(account: str, number: str, store: CallerStore, now: datetime | None = None,
          caller_ref: str | None = None, twilio_deletions: TwilioDeletions | None = None) -> dict[str, Any]:
    """Erase ``number`` from ``account`` (calls last, see the module docstring); answers counts.
    409 while a call of the number is in progress or just ended: its end (the status callbacks,
    the outbox replay, the recording) would write it back. ``twilio_deletions`` (accounts that have
    Twilio's copies deleted) is asked, before the recordings rows go, to delete Twilio's copy of
    each recording Twilio may still hold: a run that fails before then asks again next time."""
    from calltrack import clock
    from calltrack.errors import Conflict
    from recording_ingest.ingest import twilio_may_hold

    at = now or clock.now()
    calls = store.calls(account, number)
    busy = _still_written(calls, at)
    if busy is not None:
        raise Conflict(f"number: a call from this number (started {busy}) is in progress or ended "
                       f"less than {int(SETTLING.total_seconds() // 60)} minutes ago; erase it after "
                       "that, or its end would write the call back", field="number")
    sids = [str(c["call_sid"]) for c in calls]
    days = export_days(calls)
    # what an earlier run of this erasure deleted: a run that failed after the calls went finds
    # them no more, and sweeps again by CallSid what an in-flight event may have made meanwhile
    earlier_sids, earlier_days = store.erased_calls(account, number)
    # first the mark: a callback of the number's calls still waiting in the webhook's outbox (a
    # storage outage) is dropped when it is replayed, instead of writing the call back
    store.mark_erased(account, number, at.timestamp(), sids, days)
    recordings = store.recordings(account, calls)
    prefixes = object_prefixes(account, calls, recordings)
    versions = store.object_versions(prefixes)
    conversions = store.conversions(account, sids)
    deliveries = store.deliveries(account, sids)
    leads = store.leads(account, number)

    at_twilio = [r for r in recordings if twilio_may_hold(r)] if twilio_deletions else []

    export_rows = store.drop_export_rows(account, set(sids), days) if sids else 0
    store.delete_object_versions(versions)
    if at_twilio and twilio_deletions:
        twilio_deletions(at_twilio)
    store.erase_recordings(recordings, at.timestamp())
    store.delete_conversions([(str(c["call_sid"]), str(c["key"])) for c in conversions])
    store.delete_deliveries(account, [str(d["delivery_id"]) for d in deliveries])
    store.delete_leads(account, [str(lead["external_id"]) for lead in leads])
    first_call = store.forget_first_call(account, number)
    store.delete_rollup_markers(sids)
    staged = store.delete_staged_exports(staged_prefix(account, caller_ref)) if caller_ref else 0
    store.delete_calls(sids)
    gone = sorted(set(sids) | set(earlier_sids))
    # a conversion event that found the call just before it went may have made a row meanwhile:
    # with the calls gone, none can be made again (the consumer checks the call first)
    late = store.conversions(account, gone) if gone else []
    store.delete_conversions([(str(c["call_sid"]), str(c["key"])) for c in late])
    # likewise a call event planned into webhook deliveries just before the calls went
    late_deliveries = store.deliveries(account, gone) if gone else []
    store.delete_deliveries(account, [str(d["delivery_id"]) for d in late_deliveries])
    # and a recording whose fetch ended while the erasure ran (its MP3 written after the listing
    # above): with the calls gone, a later fetch finds no call and deletes its own
    late_versions = store.object_versions(prefixes) if prefixes else []
    store.delete_object_versions(late_versions)
    # and a nightly export that read the calls before they went may have written its day file
    # since the first pass: with the calls gone, no export can write them again
    if gone:
        late_days = None if days is None or earlier_days is None else days | earlier_days
        export_rows += store.drop_export_rows(account, set(gone), late_days)
        store.forget_erased_calls(account, number)
    return {
        "account": account,
        "number": number,  # as read (E.164): a national number is read in the account's region
        "erased": {
            "calls": len(sids),
            "transcripts": sum(1 for c in calls if c.get("transcript")),
            "recordings": len(recordings),
            "twilio_recordings": len(at_twilio),
            "object_versions": len(versions) + len(late_versions),
            "crm_leads": len(leads),
            "conversions": len(conversions) + len(late),
            "webhook_deliveries": len(deliveries) + len(late_deliveries),
            "export_rows": export_rows,
            "caller_first_call": int(first_call),
            "staged_exports": staged,
        },
    }
