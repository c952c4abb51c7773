"""The call records' own tables (CRM leads, ad spend) as PynamoDB adapters; calls themselves are
read and written through ``calltrack.call_items``."""

from __future__ import annotations

from typing import Any


class CrmLeads:
    """crm_leads: one row per CRM lead (account, external id), with the call it matched."""

    def save(self, account: str, row: dict[str, Any]) -> None:
        from calltrack import clock
        from calltrack.models.reports import CrmLead

        row = dict(row)
        CrmLead(account, row.pop("external_id"), updated_at=clock.now().isoformat(), **row).save()

    def of_account(self, account: str) -> list[dict[str, Any]]:
        from calltrack.models.reports import CrmLead

        return [
            {"created_at": lead.created_at, "call_sid": lead.call_sid, "channel": lead.channel}
            for lead in CrmLead.query(account)
        ]


class SpendBook:
    """spend: the amount of one channel for one month (replaced on every PUT)."""

    def put(self, account: str, month: str, channel: str, amount: float | int, currency: str) -> None:
        from calltrack.models.reports import Spend

        Spend(account, f"{month}#{channel}", amount=amount, currency=currency).save()

    def currencies(self, account: str) -> dict[str, str]:
        """``YYYY-MM#channel`` -> currency of every spend row of the account (one Query)."""
        from calltrack.models.reports import Spend

        return {row.month_channel: row.currency for row in Spend.query(account)}
