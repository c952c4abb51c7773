"""GET /v1/reports/pools (any role of the account, or the operator with ``?account=``): the pools'
peak concurrency, utilisation, exhaustions and recommended sizes (``dni_lease.pool_report``).

Bundled into report_api, whose ports carry the lease store: the public dni_lease function answers
browsers only, so it holds neither the token table nor the operator's token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from aws_lambda_powertools.event_handler.api_gateway import Router

from calltrack.api import RoutePorts, current_caller, route_ports
from dni_lease.store import LeaseStore

if TYPE_CHECKING:
    from calltrack.call_items import CallItems

router = Router()


class PoolPorts(RoutePorts, Protocol):
    @property
    def leases(self) -> LeaseStore: ...

    @property
    def calls(self) -> CallItems: ...

    @property
    def former_pool_numbers(self) -> Callable[[str], Mapping[str, Mapping[str, float]]]: ...


# What the pools report reads of each call: its attribution (late calls to learn from) and what
# tells whether its end marked its number's lease row (``calltrack.attribution.marks_holder``).
CALL_FIELDS = ("attribution", "caller_kind", "test", "confidence", "tracking_number")


@router.get("/v1/reports/pools")
def pools_report() -> dict[str, Any]:
    from calltrack import clock
    from dni_lease.service import handle_pools_report

    caller = current_caller(router)
    ports = cast(PoolPorts, route_ports(router))
    params = router.current_event.query_string_parameters or {}
    return handle_pools_report(
        caller.account,
        params,
        store=ports.leases,
        accounts=ports.accounts,
        now=clock.epoch(),
        calls=lambda start, end: ports.calls.between(caller.account, start, end, fields=CALL_FIELDS),
        former=ports.former_pool_numbers(caller.account),
    )
