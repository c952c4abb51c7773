"""report_api: the marketer's API. Routing only; each router module owns its routes and logic."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths

from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger
from report import calls, crm, recordings_api, reports, reviews, spend

logger = make_logger("report")
app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)
for module in (calls, recordings_api, reports, crm, spend, reviews):
    app.include_router(module.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from report.runtime import ensure_started

    ensure_started()
    return app.resolve(event, context)
