"""The conversions table through PynamoDB (``calltrack.models.conversions.Conversion``).

Every transition is a conditional write, so two workers holding the same call event (a duplicate
stream record, a redelivered message) never both send a row:
- ``create``: put if absent -- a new row, ``pending`` and claimed, or already ``skipped``;
- ``reclaim``: a ``pending`` row whose claim has lapsed (a retry after 429/5xx, or a worker that
  died), or a ``skipped: no_credentials`` row once the secret is set -- by an event not older than
  the version the row holds;
- ``claim_restatement``: a ``sent`` row whose value is still the one this worker saw;
- ``finish`` / ``finish_restatement``: record the outcome and release the claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from calltrack.models.conversions import Conversion
from conversions.rules import CREDENTIALS_REFUSED, NO_CREDENTIALS, Planned


def _conditional_failed(err: Exception) -> bool:
    cause = getattr(err, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def as_dict(row: Conversion) -> dict[str, Any]:
    return dict(row.attribute_values)


class DynamoConversions:
    def get(self, call_sid: str, key: str) -> dict[str, Any] | None:
        try:
            return as_dict(Conversion.get(call_sid, key, consistent_read=True))
        except Conversion.DoesNotExist:
            return None

    def create(
        self,
        account: str,
        planned: Planned,
        *,
        status: str,
        reason: str | None,
        now_iso: str,
        claim_until: float,
        expire_at: int | None = None,
    ) -> bool:
        """Put the row if there is none for (call, rule, destination); False when one exists.
        ``expire_at`` is the call's TTL: the row goes when its call does."""
        call_sid = planned.order_id.split(":", 1)[0]
        row = Conversion(
            call_sid,
            planned.key,
            account=account,
            converted_at=planned.converted_at,
            rule=planned.rule,
            destination=planned.destination,
            status=status,
            reason=reason,
            order_id=planned.order_id,
            click_id_type=planned.click_id_type,
            click_id=planned.click_id,
            value=planned.value,
            currency=planned.currency,
            call_version=planned.call_version,
            attempts=0,
            claimed_until=claim_until if status == "pending" else 0,
            created_at=now_iso,
            updated_at=now_iso,
            expire_at=expire_at,
        )
        try:
            row.save(condition=Conversion.call_sid.does_not_exist())
        except PutError as err:
            if _conditional_failed(err):
                return False
            raise
        return True

    def reclaim(
        self, call_sid: str, key: str, *, now: float, claim_until: float, planned: Planned, now_iso: str,
        any_version: bool = False,
    ) -> bool:
        """Take a lapsed pending row, or a row skipped for missing or refused credentials (perhaps
        set or fixed since: ``rules.waits_for_credentials``), unless the row already holds a newer
        version of the call (a late retry of an older event must not send its older value: the
        newer event's own retry sends the row). ``any_version``: to end the row skipped (a skip's
        reason does not depend on the version)."""
        row = Conversion(call_sid, key)
        lapsed = (Conversion.status == "pending") & (Conversion.claimed_until < now)
        unlocked = (Conversion.status == "skipped") & (
            (Conversion.reason == NO_CREDENTIALS) | Conversion.reason.startswith(CREDENTIALS_REFUSED)
        )
        taken = Conversion.call_sid.exists() & (lapsed | unlocked)
        version = Conversion.call_version
        not_newer = version.does_not_exist() | (version <= planned.call_version)
        try:
            row.update(
                actions=[
                    Conversion.status.set("pending"),
                    Conversion.claimed_until.set(claim_until),
                    _value(planned.value),
                    # the version of the value about to be sent: a late retry of an older event
                    # then never looks newer than what the platform holds
                    Conversion.call_version.set(planned.call_version),
                    Conversion.updated_at.set(now_iso),
                ],
                condition=taken if any_version else taken & not_newer,
            )
        except UpdateError as err:
            if _conditional_failed(err):
                return False
            raise
        return True

    def revalue(self, call_sid: str, key: str, *, value: float | None, version: int, now_iso: str) -> bool:
        """A skipped row (listed in the import CSV) takes the value of a newer version of its call."""
        try:
            Conversion(call_sid, key).update(
                actions=[
                    _value(value), Conversion.call_version.set(version), Conversion.updated_at.set(now_iso)
                ],
                condition=(Conversion.status == "skipped")
                & (Conversion.call_version.does_not_exist() | (Conversion.call_version < version)),
            )
        except UpdateError as err:
            if _conditional_failed(err):
                return False
            raise
        return True

    def finish(
        self,
        call_sid: str,
        key: str,
        *,
        status: str,
        reason: str | None,
        now_iso: str,
        sent_at: str | None = None,
        hold_until: float = 0,
    ) -> None:
        """Record the outcome and release the claim -- or hold the row until ``hold_until`` (a
        platform that takes it only later: nobody reclaims it before). A row erased meanwhile (a
        privacy request while the platform answered) stays erased."""
        actions: list[Action] = [
            Conversion.status.set(status),
            Conversion.claimed_until.set(hold_until),
            Conversion.attempts.add(1),
            Conversion.updated_at.set(now_iso),
        ]
        actions.append(Conversion.reason.set(reason) if reason else Conversion.reason.remove())
        if sent_at:
            actions.append(Conversion.sent_at.set(sent_at))
        _update_if_kept(call_sid, key, actions)

    def claim_restatement(
        self,
        call_sid: str,
        key: str,
        *,
        seen: float | None,
        restated: bool,
        now: float,
        claim_until: float,
        version: int,
    ) -> bool:
        """Claim a sent row to restate it, if its effective value (the last restatement, else the value
        first sent) is still the ``seen`` one this worker read and the call's ``version`` is newer than
        the one that value came from (a late, redelivered older event never restates backwards)."""
        if restated:
            same = Conversion.restated_value == seen
        else:
            sent = Conversion.value.does_not_exist() if seen is None else Conversion.value == seen
            same = Conversion.restated_value.does_not_exist() & sent
        newer = Conversion.call_version.does_not_exist() | (Conversion.call_version < version)
        row = Conversion(call_sid, key)
        try:
            row.update(
                actions=[Conversion.claimed_until.set(claim_until)],
                condition=(Conversion.status == "sent") & (Conversion.claimed_until < now) & same & newer,
            )
        except UpdateError as err:
            if _conditional_failed(err):
                return False
            raise
        return True

    def finish_restatement(
        self,
        call_sid: str,
        key: str,
        *,
        value: float | None,
        note: str | None,
        now_iso: str,
        version: int = 0,
    ) -> None:
        actions: list[Action] = [Conversion.claimed_until.set(0), Conversion.updated_at.set(now_iso)]
        if value is not None:
            actions += [
                Conversion.restated_value.set(value),
                Conversion.restated_at.set(now_iso),
                Conversion.call_version.set(version),
            ]
        if note:
            actions.append(Conversion.note.set(note))
        _update_if_kept(call_sid, key, actions)

    def set_note(self, call_sid: str, key: str, note: str, now_iso: str) -> None:
        Conversion(call_sid, key).update(
            actions=[Conversion.note.set(note), Conversion.updated_at.set(now_iso)],
            condition=Conversion.call_sid.exists(),
        )

    def of_call(self, call_sid: str) -> list[dict[str, Any]]:
        return [as_dict(r) for r in Conversion.query(call_sid, consistent_read=True)]

    def of_account(self, account: str, lo: str, hi: str) -> Iterator[dict[str, Any]]:
        """Rows whose call started between ``lo`` and ``hi`` (ISO UTC, inclusive), oldest first."""
        for row in Conversion.by_account.query(account, Conversion.converted_at.between(lo, hi)):
            yield as_dict(row)


def _update_if_kept(call_sid: str, key: str, actions: list[Action]) -> None:
    """Update a row unless a privacy erasure deleted it meanwhile: an unconditional update would make
    it again, without account or expiry, kept for ever."""
    try:
        Conversion(call_sid, key).update(actions=actions, condition=Conversion.call_sid.exists())
    except UpdateError as err:
        if not _conditional_failed(err):
            raise


def _value(value: float | None) -> Action:
    return Conversion.value.set(value) if value is not None else Conversion.value.remove()
