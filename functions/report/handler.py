"""report_api: the marketer's API. Routing only; each router module owns its routes and logic."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths

from call_records import callbacks, calls, crm, spend
from calltrack.api import bounded_json, guard_bodies
from calltrack.http_errors import register_error_handlers
from calltrack.observability import make_logger, make_tracer
from conversions import api as conversions_api
from dni_lease import pools_api
from recording_ingest import access as recordings_access
from report import recount, reports, reviews
from report.runtime import API_NEEDS
from transcripts import api as transcripts_api

logger = make_logger("report")
NEEDS = API_NEEDS  # what the wiring grants report_api (checked at cold start by start_api)
tracer = make_tracer("report")
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=bounded_json)
guard_bodies(app)  # auth, then the body limits, before validation parses any body
register_error_handlers(app)
for module in (calls, recordings_access, transcripts_api, reports, crm, spend, reviews, conversions_api,
               callbacks, pools_api, recount):
    app.include_router(module.router)

OPENAPI_TITLE = "calltrack report API"


@app.exception_handler(RequestValidationError)
def _invalid(err: RequestValidationError) -> Response[Any]:
    """Validation failures are client mistakes: 400 naming the field (not Powertools' 422)."""
    problems = err.errors()
    first = problems[0] if problems else {"loc": ("body",), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or str((first.get("loc") or ("body",))[0])
    message = f"{field}: {first.get('msg', 'invalid')}"
    details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "type": e.get("type")} for e in problems]
    body = {"error": "bad_request", "message": message, "field": field, "details": details}
    return Response(status_code=400, content_type="application/json", body=json.dumps(body, default=str))


def _describe_bare_responses() -> None:
    """Powertools cannot describe a route annotated ``-> Response`` (it needs ``Response[T]``);
    treat those as ``Response[Any]`` so one route's annotation cannot break /openapi.json."""
    for route in [*app._static_routes, *app._dynamic_routes]:
        annotations = getattr(route.func, "__annotations__", {})
        if annotations.get("return") in ("Response", Response):
            annotations["return"] = Response[Any]


def openapi_document() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    _describe_bare_responses()

    schema = app.get_openapi_json_schema(
        title=OPENAPI_TITLE,
        version="1",
        description="Reports, calls, CRM, spend, reviews and recordings access. Bearer token per account.",
        security_schemes={"bearer": HTTPBearer()},
        security=[{"bearer": []}],
    )
    return dict(json.loads(schema))


@app.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body=json.dumps(openapi_document()))


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack.api import PORTS_KEY
    from report.runtime import api_ports

    app.append_context(**{PORTS_KEY: api_ports()})
    return app.resolve(event, context)
