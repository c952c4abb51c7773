"""What the call records' routes use, as Protocols: the report API's composition root
(``report.runtime.ApiPorts``) provides them in each request's routing context."""

from __future__ import annotations

from typing import Any, Protocol, cast

from calltrack.api import RoutePorts, route_ports


class CrmLeads(Protocol):
    def save(self, account: str, row: dict[str, Any]) -> None: ...

    def of_account(self, account: str) -> list[dict[str, Any]]: ...


class SpendBook(Protocol):
    def put(self, account: str, month: str, channel: str, amount: float | int, currency: str) -> None: ...

    def currencies(self, account: str) -> dict[str, str]: ...


class CallConversions(Protocol):
    """The conversions recorded for a call (the conversions context's store, read only here)."""

    def of_call(self, call_sid: str) -> list[dict[str, Any]]: ...


class CallRecordsPorts(RoutePorts, Protocol):
    @property
    def leads(self) -> CrmLeads: ...

    @property
    def spend(self) -> SpendBook: ...

    @property
    def conversions(self) -> CallConversions: ...


def ports(router: Any) -> CallRecordsPorts:
    """This request's ports (see ``calltrack.api.route_ports``)."""
    return cast(CallRecordsPorts, route_ports(router))
