"""dni_lease: GET /dni.js, POST+OPTIONS /dni/lease. Routing only (GET /v1/reports/pools is
report_api's: ``dni_lease.pools_api``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from calltrack import clock
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger, make_metrics
from dni_lease import service
from dni_lease.leasing import ADDRESS_CAP, LeaseResult
from dni_lease.runtime import NEEDS as NEEDS
from dni_lease.script import script_etag, script_text

logger = make_logger("dni_lease")
# PoolExhausted: a lease answered with a shared number (every number of the pool held by a live
# session); the ops dashboard graphs it next to the pools report's exhaustion counts.
# AddressCapped: answered with no number (the page keeps the site's) because the client's address
# already holds dni.max_numbers_per_address of the pool's numbers (free numbers were left).
metrics = make_metrics("dni_lease")
app = APIGatewayHttpResolver()
register_error_handlers(app)
_limits = service.Limits()


def _header(name: str) -> str | None:
    headers = app.current_event.headers or {}
    return headers.get(name) or headers.get(name.title())


@app.get("/dni.js")
def get_script() -> Response:
    etag = script_etag()
    headers = {
        "Cache-Control": service.SCRIPT_CACHE_CONTROL,
        "ETag": etag,
        "Access-Control-Allow-Origin": "*",
    }
    if _header("if-none-match") == etag:
        return Response(status_code=304, headers=headers, body="")
    return Response(
        status_code=200,
        content_type="application/javascript; charset=utf-8",
        body=script_text(),
        headers=headers,
    )


@app.route("/dni/lease", method="OPTIONS")
def preflight() -> Response:
    return Response(status_code=204, headers=service.preflight_headers(_header("origin")), body="")


@app.post("/dni/lease")
def lease() -> Response:
    import json

    from calltrack.bodies import raw_event_body
    from calltrack.errors import DomainError
    from calltrack.http_errors import error_response
    from dni_lease.runtime import ports as process_ports

    ports = process_ports()
    origin = _header("origin")
    try:
        body = service.handle_lease(
            raw_event_body(app.current_event.raw_event),
            origin=origin,
            source_ip=app.current_event.request_context.http.source_ip,
            store=ports.store,
            accounts=ports.accounts,
            limits=_limits,
            now=clock.epoch(),
            outcome=_count_without_lease,
        )
    except DomainError as err:
        response = error_response(err)
        if err.status != 403:  # a disallowed origin must not be able to read anything
            response.headers.update(service.cors_headers(origin))
        if err.status == 429:
            response.headers["Retry-After"] = "60"
        return response
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(body),
        headers={**service.cors_headers(origin), "Cache-Control": "no-store"},
    )


def _count_without_lease(account: str, result: LeaseResult) -> None:
    """The metric of an answer without a lease, by its cause; an address at its cap is also logged
    (the account and pool, never the address or its key)."""
    from aws_lambda_powertools.metrics import MetricUnit

    if result.reason == ADDRESS_CAP:
        metrics.add_metric(name="AddressCapped", unit=MetricUnit.Count, value=1)
        logger.info("lease answered with no number: the client address holds its cap of the pool",
                    extra={"account": account, "pool": result.pool, "reason": ADDRESS_CAP})
    elif result.shared:
        metrics.add_metric(name="PoolExhausted", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
